using System.Globalization;
using System.Runtime.InteropServices;
using DiffII.Cli;

// Numbers are printed and read the same in every locale (threads that do not inherit the flow get it too).
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.DefaultThreadCurrentUICulture = CultureInfo.InvariantCulture;

using var cancel = new CancellationTokenSource();
string? signal = null;
// Ctrl+C (SIGINT) and SIGTERM (what schedulers, Docker, systemd and Kubernetes send) both ask the running step to
// stop at the next safe point, checkpoint saved; a second signal kills the process.
void Stop(PosixSignalContext context)
{
    if (cancel.IsCancellationRequested) return;
    context.Cancel = true;
    signal = context.Signal == PosixSignal.SIGTERM ? "SIGTERM" : "Ctrl+C";
    Console.Error.WriteLine($"diffii: {signal} received; stopping at the next safe point and saving a checkpoint (send it again to kill at once).");
    cancel.Cancel();
}
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
int code = await CliApp.RunAsync(args, Console.Out, Console.Error, cancel.Token);
// A stop asked for by SIGTERM ends with 143 (128 + 15), as a process killed by it would, but after its checkpoint.
return code == CliApp.Stopped && signal == "SIGTERM" ? 128 + 15 : code;

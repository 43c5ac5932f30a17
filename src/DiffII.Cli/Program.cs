using DiffII.Cli;

using var cancel = new CancellationTokenSource();
// Ctrl+C asks the running step to stop at the next safe point (checkpoint saved); a second Ctrl+C kills the process.
Console.CancelKeyPress += (_, e) =>
{
    if (cancel.IsCancellationRequested) return;
    e.Cancel = true;
    cancel.Cancel();
};
return await CliApp.RunAsync(args, Console.Out, Console.Error, cancel.Token);

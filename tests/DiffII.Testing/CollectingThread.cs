namespace DiffII.Testing;

/// <summary>A thread that allocates and forces garbage collections (and finalizers) until disposed.</summary>
/// <remarks>Finalizer races in TorchSharp (freed Scalars, temporary tensors) show up in seconds beside it.</remarks>
public sealed class CollectingThread : IDisposable
{
    readonly CancellationTokenSource _stop = new();
    readonly Thread _thread;
    int _collections;

    public int Collections => Volatile.Read(ref _collections);

    public CollectingThread()
    {
        _thread = new Thread(() =>
        {
            while (!_stop.IsCancellationRequested)
            {
                GC.KeepAlive(new byte[1 << 16]);
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Interlocked.Increment(ref _collections);
            }
        }) { IsBackground = true, Name = "collecting" };
        _thread.Start();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join();
        _stop.Dispose();
    }
}

namespace DiffII.Augmentation;

/// <summary>
/// An <see cref="IProgress{T}"/> that reports on the calling thread, in order (<see cref="Progress{T}"/> posts to the
/// thread pool, so reports could arrive late or out of order, after the step they describe).
/// </summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

namespace DiffII.Cli;

/// <summary>An error the user can act on. Its message is one line that names the thing and what to do.</summary>
public sealed class CliException(string message, Exception? inner = null) : Exception(message, inner);

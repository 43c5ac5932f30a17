using System.ClientModel;
using Microsoft.Extensions.AI;
using OpenAI;

namespace DiffII.Cli;

/// <summary>
/// An OpenAI-compatible chat-completions endpoint (OpenAI, Ollama's /v1, vLLM, LM Studio …) as an
/// <see cref="IChatClient"/>, through Microsoft.Extensions.AI.OpenAI. A failed request becomes an
/// <see cref="HttpRequestException"/> naming the URL it went to, which the CLI prints as one line.
/// </summary>
static class ChatEndpoint
{
    /// <param name="endpoint">The API base, e.g. http://localhost:11434/v1; requests go to {endpoint}/chat/completions.</param>
    /// <param name="apiKey">Sent as a bearer token; local servers need none (the OpenAI client then sends a placeholder they ignore).</param>
    public static IChatClient Create(Uri endpoint, string model, string? apiKey)
    {
        var options = new OpenAIClientOptions { Endpoint = endpoint, NetworkTimeout = TimeSpan.FromMinutes(5) };
        var client = new OpenAIClient(new ApiKeyCredential(string.IsNullOrEmpty(apiKey) ? "no-key" : apiKey), options);
        return new NamingFailures(client.GetChatClient(model).AsIChatClient(), endpoint.ToString().TrimEnd('/') + "/chat/completions");
    }

    sealed class NamingFailures(IChatClient inner, string completions) : DelegatingChatClient(inner)
    {
        public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            try
            {
                return await base.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
            }
            catch (ClientResultException e)
            {
                throw new HttpRequestException($"{completions} answered {e.Status}: {Shorten(e.Message)}", e);
            }
        }
    }

    static string Shorten(string text) => text.Length <= 300 ? text.ReplaceLineEndings(" ") : text[..300].ReplaceLineEndings(" ") + "…";
}

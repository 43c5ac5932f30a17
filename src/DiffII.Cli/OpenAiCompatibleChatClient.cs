using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;

namespace DiffII.Cli;

/// <summary>
/// A minimal <see cref="IChatClient"/> for OpenAI-compatible chat-completions endpoints (OpenAI, Ollama's /v1,
/// vLLM, LM Studio …): text and images (as data: URIs in image_url parts) in, the first choice's text out.
/// </summary>
public sealed class OpenAiCompatibleChatClient : IChatClient
{
    readonly HttpClient _http;
    readonly bool _ownsHttp;
    readonly Uri _completions;
    readonly string _model;
    readonly string? _apiKey;

    /// <param name="endpoint">The API base, e.g. http://localhost:11434/v1; requests go to {endpoint}/chat/completions.</param>
    public OpenAiCompatibleChatClient(Uri endpoint, string model, string? apiKey = null, HttpClient? http = null)
    {
        _completions = new Uri(endpoint.ToString().TrimEnd('/') + "/chat/completions");
        _model = model;
        _apiKey = apiKey;
        _ownsHttp = http is null;
        _http = http ?? new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
    }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var body = new JsonObject
        {
            ["model"] = options?.ModelId ?? _model,
            ["messages"] = new JsonArray(messages.Select(ToJson).ToArray<JsonNode?>()),
            ["stream"] = false,
        };
        if (options?.Temperature is float temperature) body["temperature"] = temperature;
        if (options?.MaxOutputTokens is int max) body["max_tokens"] = max;

        using var request = new HttpRequestMessage(HttpMethod.Post, _completions)
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        if (!string.IsNullOrEmpty(_apiKey)) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _apiKey);
        using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        string text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"{_completions} answered {(int)response.StatusCode} {response.ReasonPhrase}: {Shorten(text)}");
        string content;
        try
        {
            var reply = JsonNode.Parse(text);
            content = reply?["choices"]?[0]?["message"]?["content"]?.GetValue<string>()
                      ?? throw new InvalidDataException("no choices[0].message.content");
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or InvalidOperationException)
        {
            throw new InvalidDataException($"{_completions} sent a reply that is not a chat completion ({e.Message}): {Shorten(text)}", e);
        }
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, content)) { ModelId = _model };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // Suffix generation needs whole answers; a streaming caller gets the whole answer as one update.
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }

    static JsonObject ToJson(ChatMessage message)
    {
        var parts = new JsonArray();
        foreach (var item in message.Contents)
        {
            switch (item)
            {
                case TextContent t:
                    parts.Add(new JsonObject { ["type"] = "text", ["text"] = t.Text });
                    break;
                case DataContent d when d.HasTopLevelMediaType("image"):
                    parts.Add(new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = $"data:{d.MediaType};base64,{Convert.ToBase64String(d.Data.Span)}" } });
                    break;
                case UriContent u when u.HasTopLevelMediaType("image"):
                    parts.Add(new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = u.Uri.ToString() } });
                    break;
                default:
                    throw new NotSupportedException($"The chat client sends text and images only; got {item.GetType().Name}.");
            }
        }
        string role = message.Role == ChatRole.System ? "system" : message.Role == ChatRole.Assistant ? "assistant" : "user";
        // Plain text messages go as a string, which every compatible server accepts.
        JsonNode content = parts.Count == 1 && parts[0]!["type"]!.GetValue<string>() == "text" ? JsonValue.Create(message.Text)! : parts;
        return new JsonObject { ["role"] = role, ["content"] = content };
    }

    static string Shorten(string text) => text.Length <= 300 ? text.ReplaceLineEndings(" ") : text[..300].ReplaceLineEndings(" ") + "…";
}

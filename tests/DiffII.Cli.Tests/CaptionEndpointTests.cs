using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace DiffII.Cli.Tests;

/// <summary>Suffixes from captions: an OpenAI-compatible chat endpoint, served here on the loopback interface.</summary>
public sealed class CaptionEndpointTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("diffii-cli-cap-").FullName;
    public void Dispose() => Directory.Delete(_root, true);

    sealed class FakeEndpoint : IDisposable
    {
        readonly HttpListener _listener = new();
        readonly Task _serving;
        public List<JsonDocument> Requests { get; } = [];
        public List<string?> Authorizations { get; } = [];
        public string BaseUrl { get; }

        public FakeEndpoint()
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            BaseUrl = $"http://127.0.0.1:{port}/v1";
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            _listener.Start();
            _serving = Task.Run(Serve);
        }

        async Task Serve()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try { context = await _listener.GetContextAsync(); }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
                using var reader = new StreamReader(context.Request.InputStream);
                var request = JsonDocument.Parse(await reader.ReadToEndAsync());
                lock (Requests) { Requests.Add(request); Authorizations.Add(context.Request.Headers["Authorization"]); }
                bool captioning = request.RootElement.GetRawText().Contains("image_url");
                string answer = captioning
                    ? "A small bird with a white patch, on a plain background."
                    : "Here are the captions:\n- a photo of a bird sitting on a red fence.\n- a photo of a bird in the snow\nHope this helps.";
                bool wrongPath = context.Request.Url!.AbsolutePath != "/v1/chat/completions";
                // A whole chat.completion object, as OpenAI-compatible servers send it.
                string model = request.RootElement.TryGetProperty("model", out var m) ? m.GetString() ?? "" : "";
                byte[] body = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
                {
                    id = $"chatcmpl-{Requests.Count}", @object = "chat.completion", created = 1_700_000_000, model,
                    choices = new[] { new { index = 0, message = new { role = "assistant", content = answer }, finish_reason = "stop" } },
                    usage = new { prompt_tokens = 10, completion_tokens = 10, total_tokens = 20 },
                }));
                context.Response.StatusCode = wrongPath ? 404 : 200;
                context.Response.ContentType = "application/json";
                await context.Response.OutputStream.WriteAsync(body);
                context.Response.Close();
            }
        }

        public void Dispose()
        {
            _listener.Stop();
            _listener.Close();
            _serving.Wait(TimeSpan.FromSeconds(5));
        }
    }

    [Fact]
    public async Task CaptionedSuffixes_AreMadeThroughTheEndpoint_UsedForGeneration_AndCached()
    {
        using var endpoint = new FakeEndpoint();
        string images = Cli.Images(Path.Combine(_root, "images"), ("cardinal", 2), ("jay", 2));
        string work = Path.Combine(_root, "work");
        Environment.SetEnvironmentVariable("DIFFII_TEST_KEY", "secret-123");
        var run = await Cli.Run(["generate", .. Cli.Tiny(work, images, "--expansion", "1", "--caption-endpoint", endpoint.BaseUrl,
            "--caption-model", "llava", "--summary-model", "llama3", "--caption-images", "3", "--api-key-env", "DIFFII_TEST_KEY")]);
        Assert.True(run.Code == 0, run.ToString());

        // Three captioning requests (one image each, as a data URI, spread over both classes), then one summary request.
        Assert.Equal(4, endpoint.Requests.Count);
        Assert.All(endpoint.Authorizations, a => Assert.Equal("Bearer secret-123", a));
        var captions = endpoint.Requests.Take(3).Select(r => r.RootElement).ToList();
        Assert.All(captions, r =>
        {
            Assert.Equal("llava", r.GetProperty("model").GetString());
            var parts = r.GetProperty("messages")[0].GetProperty("content").EnumerateArray().ToList();
            Assert.Equal("text", parts[0].GetProperty("type").GetString());
            Assert.StartsWith("data:image/png;base64,", parts[1].GetProperty("image_url").GetProperty("url").GetString());
        });
        var summary = endpoint.Requests[3].RootElement;
        Assert.Equal("llama3", summary.GetProperty("model").GetString());
        Assert.Contains("a photo of a bird", Text(summary.GetProperty("messages")[0].GetProperty("content")));

        string[] expected = ["sitting on a red fence.", "in the snow."];
        Assert.Equal(expected, File.ReadAllLines(Path.Combine(work, "suffixes-captioned.txt")).Where(l => !l.StartsWith('#')).ToArray());
        foreach (var line in File.ReadAllLines(Path.Combine(work, "manifest.jsonl")))
            Assert.Contains(JsonDocument.Parse(line).RootElement.GetProperty("suffix").GetString(), expected);

        // A rerun with the same options reads the cached suffixes and asks the endpoint nothing.
        var again = await Cli.Run(["generate", "--work", work, "--caption-endpoint", endpoint.BaseUrl, "--caption-model", "llava"]);
        Assert.True(again.Code == 0, again.ToString());
        Assert.Equal(4, endpoint.Requests.Count);
    }

    /// <summary>A message's text: the content string, or its text parts joined (both are valid chat-completions requests).</summary>
    static string Text(JsonElement content) => content.ValueKind == JsonValueKind.String
        ? content.GetString()!
        : string.Concat(content.EnumerateArray().Where(p => p.GetProperty("type").GetString() == "text").Select(p => p.GetProperty("text").GetString()));

    [Fact]
    public async Task AnEndpointThatFails_IsOneLineNamingIt()
    {
        using var endpoint = new FakeEndpoint();
        string images = Cli.Images(Path.Combine(_root, "images"), ("cardinal", 2), ("jay", 2));
        string wrong = endpoint.BaseUrl.Replace("/v1", "/nope");
        var run = await Cli.Run(["generate", .. Cli.Tiny(Path.Combine(_root, "work"), images, "--caption-endpoint", wrong, "--caption-model", "llava")]);
        Assert.Equal(1, run.Code);
        var line = Assert.Single(run.ErrorLines, l => l.StartsWith("diffii", StringComparison.Ordinal));
        Assert.Contains(wrong + "/chat/completions answered 404", line);
        Assert.DoesNotContain("   at ", run.Stderr);
    }
}

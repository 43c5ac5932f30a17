namespace DiffII.Diffusion.Text;

/// <summary>
/// Finds added tokens in raw text the way transformers' <c>Trie.split</c> does: scanning left to right, the earliest
/// match wins and, among matches starting there, the longest. Adding a token costs O(its length); splitting costs
/// O(text length × longest token), independent of how many tokens were added.
/// </summary>
internal sealed class AddedTokenTrie
{
    sealed class Node
    {
        public Dictionary<char, Node>? Children;
        public string? Token;
    }

    readonly Node _root = new();

    public void Add(string token)
    {
        Node node = _root;
        foreach (char c in token)
        {
            node.Children ??= [];
            if (!node.Children.TryGetValue(c, out Node? child)) node.Children[c] = child = new Node();
            node = child;
        }
        node.Token = token;
    }

    /// <summary>Pieces of <paramref name="text"/> in order; <c>Token</c> is set for pieces that are added tokens.</summary>
    public List<(string Text, string? Token)> Split(string text)
    {
        var pieces = new List<(string, string?)>();
        int plainStart = 0, i = 0;
        while (i < text.Length)
        {
            string? longest = null;
            Node? node = _root;
            for (int j = i; j < text.Length && node.Children is not null && node.Children.TryGetValue(text[j], out node); j++)
                if (node.Token is not null) longest = node.Token;

            if (longest is null) { i++; continue; }
            if (i > plainStart) pieces.Add((text[plainStart..i], null));
            pieces.Add((longest, longest));
            i += longest.Length;
            plainStart = i;
        }
        if (plainStart < text.Length) pieces.Add((text[plainStart..], null));
        return pieces;
    }
}

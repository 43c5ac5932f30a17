namespace DiffII.Suffixes;

/// <summary>A named list of prompt suffixes for the first denoising stage, with the metaclass it was written for.</summary>
public sealed record SuffixPreset(string Name, string Metaclass, IReadOnlyList<string> Suffixes);

/// <summary>
/// The suffixes the paper lists in its appendix A.5.1 (summarised by GPT-4-turbo from BLIP captions of each
/// dataset) and the metaclasses of A.5.2, so results can be reproduced without a captioning model; and
/// <c>tiny-world</c>, the contexts the embedded tiny generator was pretrained on, so the default model works from the
/// command line without a suffix file.
/// </summary>
public static class SuffixPresets
{
    public static IReadOnlyList<SuffixPreset> All { get; } =
    [
        new("cub-5shot", "bird", [
            "standing on a tree branch.", "flying around flowers.", "standing on a post by the water.", "flying over water.",
            "standing on the ground.", "swimming in the water.", "sitting on a rock with a blue sky.", "perched on a branch in a tree.",
            "flying over water with wings spread.", "perched on a tree branch."]),
        new("cub-10shot", "bird", [
            "flying over water.", "standing on the ground.", "sitting on a rock.", "swimming in water.", "sitting on a bird feeder.",
            "standing on the beach near water.", "perched on a wire with a blue sky in the background.",
            "standing on a branch with tall grass in the background.", "flying in the sky with its wings spread."]),
        new("car-5shot", "car", [
            "parked on a city street.", "on a white background.", "parked in a lot with green trees in the background.",
            "parked on a gravel road with mountains in the background.", "driving down a tree-lined road.", "parked on a black floor.",
            "with its doors open.", "charging at a station.", "driving on a racing track."]),
        new("car-10shot", "car", [
            "parked on a road.", "parked on a gravel road.", "parked with trees in the background.", "driving down a forested road.",
            "driving on a dirt road in desert area.", "on display at a show.", "driving on a city street.", "parked in a garage.",
            "parked in front of a store with other cars."]),
        new("aircraft-5shot", "aircraft", [
            "parked on the runway.", "flying in the sky with the landing gear down.", "landing with another plane in the background.",
            "on the runway at an airport.", "on the tarmac with mountains in the background.", "flying in the air with the landing gear down.",
            "parked in a hangar with the door open.", "flying in the sky with palm trees in the background.",
            "flying in the sky against a blue background.", "lined up on the runway at the airport."]),
        new("aircraft-10shot", "aircraft", [
            "flying in the sky with landing gear down.", "taking off from the airport with a city in the background.",
            "at the tarmac of an airport with a building in the background.", "with passengers, flying in the sky.",
            "propeller plane on a runway, with a Honeywell sign in the background.", "airplane where workers are seen working on it in a hangar.",
            "plane with a green stripe on the runway.", "with people on board, floating in water.",
            "with a red cross on its tail and landing gear.", "jet on the runway with smoke coming out of it."]),
        new("pet-5shot", "animal", [
            "lying on a pillow on the floor.", "playing with a toy on the floor.", "in the grass, looking at the camera with a leash.",
            "on a window sill looking out.", "sitting on a couch with a stuffed animal.", "on a rock beside a person.",
            "running in the grass with a frisbee."]),
        new("pet-10shot", "animal", [
            "laying down in the grass.", "sitting on brown leather furniture.", "sitting on a couch with a dark background.",
            "playing with a ball in the grass.", "sitting on a windowsill, looking outdoors.", "standing on a wooden deck.",
            "sitting inside a cage.", "sitting on a chair with its mouth open.", "laying on a couch with a white background."]),
        new("cub-lt-if10", "bird", [
            "flying over the ocean.", "sitting on a rock by the water.", "standing in the grass.", "flying in the sky with its wings spread.",
            "swimming in the water.", "standing on a sandy beach.", "sitting on a wire fence.", "perched on a bird feeder in the snow.",
            "standing on a tree stump."]),
        new("cub-lt-if20", "bird", [
            "sitting on a rock in the water.", "perched on a branch in a tree.", "standing on the ground in the grass.",
            "sitting on a post by the water.", "standing on a ledge near the water.", "flying in the sky with its wings spread.",
            "sitting on a branch with a blurred background."]),
        new("cub-lt-if100", "bird", [
            "flying in the sky with its wings spread.", "standing on the ground in the dirt.", "sitting on a branch of a tree.",
            "swimming in the water.", "perched on a hand in a grassy field.", "standing on the shore of the water.",
            "sitting on a ledge by water.", "standing in the water with its reflection."]),
        new("flower-lt-if10", "flower", [
            "with water droplets on it.", "growing in a garden.", "in a close-up view.", "with a bee on it.", "in front of a water body.",
            "against a brick wall.", "with a butterfly on it.", "with mixed colors in a bush."]),
        new("flower-lt-if20", "flower", [
            "close-up with a dark background.", "blooming in a garden.", "growing in a pot.", "floating on water in a pond.",
            "arranged on a table.", "with a bee on it in the garden.", "on a tree.", "in a field with a rocky surface.", "against a blue sky.",
            "with a blurry background in a field."]),
        // The tiny generator's captions have no full stop, and its vocabulary has none: these stay as it was taught them.
        new("tiny-world", "clothing item", [
            "on a plain background", "on a striped background", "on a checkered background", "on a dotted background",
            "on a gradient background", "on a plain white background", "on a striped red background", "on a dotted blue background",
            "in yellow on a checkered background", "in pink on a gradient background"]),
    ];

    /// <summary>The presets transcribed from the paper's appendix (every one but <c>tiny-world</c>).</summary>
    public static IEnumerable<SuffixPreset> FromThePaper => All.Where(p => p.Name != "tiny-world");

    /// <summary>The metaclass of each dataset in the paper (A.5.2).</summary>
    public static IReadOnlyDictionary<string, string> Metaclasses { get; } = new Dictionary<string, string>
    {
        ["cub"] = "bird", ["aircraft"] = "aircraft", ["car"] = "car", ["pet"] = "animal", ["cub-lt"] = "bird", ["flower-lt"] = "flower",
    };

    /// <summary>Finds a preset by name (case-insensitive); the error lists the names that exist.</summary>
    public static SuffixPreset Get(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"No suffix preset named '{name}'. Presets: {string.Join(", ", All.Select(p => p.Name))}.", nameof(name));

    /// <summary>
    /// Reads suffixes from a text file, one per line; blank lines and lines starting with '#' are skipped, and a
    /// leading "- " bullet is removed.
    /// </summary>
    public static IReadOnlyList<string> ReadFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Suffix file not found: {path}", path);
        var suffixes = File.ReadAllLines(path)
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.StartsWith("- ", StringComparison.Ordinal) ? l[2..].Trim() : l)
            .ToList();
        if (suffixes.Count == 0) throw new InvalidDataException($"{path} holds no suffix (one per line; '#' starts a comment).");
        return suffixes;
    }
}

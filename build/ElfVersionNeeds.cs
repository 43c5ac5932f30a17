// Reads and edits the symbol-version requirements (.gnu.version_r) of a 64-bit little-endian ELF shared library.
//
// Why this exists: TorchSharp 0.107.0's libLibTorchSharp.so was linked against GCC 13's libstdc++ and so records a
// requirement on GLIBCXX_3.4.32. Debian 12 and Ubuntu 22.04 ship GCC 12's libstdc++, which lacks that version, and the
// dynamic loader refuses the whole library. The only symbol bound to that version is _ZSt21ios_base_library_initv,
// which the library never calls. Marking the requirement VER_FLG_WEAK makes the loader accept a missing version
// (it still binds every symbol it can find), so the library loads and works.
//
// This one file serves two callers:
//   * the build (build/TorchSharp.Native.targets compiles it as an inline MSBuild task) patches the copy of the
//     library in the build or publish output, never the NuGet cache;
//   * DiffII.Diffusion compiles it with DIFFII_RUNTIME defined, to explain a load failure in plain words.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace DiffII.Build
{
    /// <summary>One version requirement: "<see cref="Library"/> must define <see cref="Version"/>".</summary>
    public sealed class ElfVersionNeed
    {
        public ElfVersionNeed(string library, string version, ushort flags, ushort index, long flagsOffset)
        {
            Library = library; Version = version; Flags = flags; Index = index; FlagsOffset = flagsOffset;
        }
        public string Library { get; }
        public string Version { get; }
        public ushort Flags { get; }
        /// <summary>The version index that .gnu.version uses to tie symbols to this requirement.</summary>
        public ushort Index { get; }
        /// <summary>File offset of vna_flags, so the flag can be rewritten in place.</summary>
        public long FlagsOffset { get; }
        public bool IsWeak => (Flags & ElfVersionNeeds.VerFlagWeak) != 0;
    }

    public static class ElfVersionNeeds
    {
        public const ushort VerFlagWeak = 0x2;
        const uint ShtDynsym = 11;
        const uint ShtGnuVerdef = 0x6ffffffd;
        const uint ShtGnuVerneed = 0x6ffffffe;
        const uint ShtGnuVersym = 0x6fffffff;

        readonly struct Section
        {
            public Section(uint type, long offset, long size, uint link, long entSize)
            { Type = type; Offset = offset; Size = size; Link = link; EntSize = entSize; }
            public uint Type { get; }
            public long Offset { get; }
            public long Size { get; }
            public uint Link { get; }
            public long EntSize { get; }
        }

        /// <summary>True when the bytes start like a 64-bit little-endian ELF file, the only kind this code reads.</summary>
        public static bool IsElf64LittleEndian(byte[] elf) =>
            elf.Length >= 64 && elf[0] == 0x7f && elf[1] == (byte)'E' && elf[2] == (byte)'L' && elf[3] == (byte)'F'
            && elf[4] == 2 && elf[5] == 1;

        /// <summary>Every version requirement in the file, in file order.</summary>
        public static IReadOnlyList<ElfVersionNeed> ReadNeeds(byte[] elf)
        {
            var result = new List<ElfVersionNeed>();
            var sections = ReadSections(elf);
            foreach (var verneed in sections.Where(s => s.Type == ShtGnuVerneed))
            {
                var strtab = sections[(int)verneed.Link];
                long entry = verneed.Offset;
                long end = verneed.Offset + verneed.Size;
                while (entry + 16 <= end)
                {
                    ushort count = U16(elf, entry + 2);
                    string file = ReadString(elf, strtab, U32(elf, entry + 4));
                    long aux = entry + U32(elf, entry + 8);
                    for (int i = 0; i < count; i++)
                    {
                        CheckRange(elf, aux, 16);
                        ushort flags = U16(elf, aux + 4);
                        ushort index = U16(elf, aux + 6);
                        string name = ReadString(elf, strtab, U32(elf, aux + 8));
                        result.Add(new ElfVersionNeed(file, name, flags, index, aux + 4));
                        uint nextAux = U32(elf, aux + 12);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }
                    uint next = U32(elf, entry + 12);
                    if (next == 0) break;
                    entry += next;
                }
            }
            return result;
        }

        /// <summary>Every version a library defines (.gnu.version_d), e.g. GLIBCXX_3.4.30 for libstdc++.</summary>
        public static IReadOnlyList<string> ReadDefinitions(byte[] elf)
        {
            var result = new List<string>();
            var sections = ReadSections(elf);
            foreach (var verdef in sections.Where(s => s.Type == ShtGnuVerdef))
            {
                var strtab = sections[(int)verdef.Link];
                long entry = verdef.Offset;
                long end = verdef.Offset + verdef.Size;
                while (entry + 20 <= end)
                {
                    long aux = entry + U32(elf, entry + 12);
                    CheckRange(elf, aux, 8);
                    result.Add(ReadString(elf, strtab, U32(elf, aux)));
                    uint next = U32(elf, entry + 16);
                    if (next == 0) break;
                    entry += next;
                }
            }
            return result;
        }

        /// <summary>Names of the dynamic symbols bound to the given version index.</summary>
        public static IReadOnlyList<string> SymbolsBoundTo(byte[] elf, ushort versionIndex)
        {
            var sections = ReadSections(elf);
            var dynsym = sections.FirstOrDefault(s => s.Type == ShtDynsym);
            var versym = sections.FirstOrDefault(s => s.Type == ShtGnuVersym);
            if (dynsym.Size == 0 || versym.Size == 0) return Array.Empty<string>();
            var strtab = sections[(int)dynsym.Link];
            long entSize = dynsym.EntSize == 0 ? 24 : dynsym.EntSize;
            long count = dynsym.Size / entSize;
            var names = new List<string>();
            for (long i = 0; i < count; i++)
            {
                ushort index = (ushort)(U16(elf, versym.Offset + 2 * i) & 0x7fff);
                if (index == versionIndex)
                    names.Add(ReadString(elf, strtab, U32(elf, dynsym.Offset + i * entSize)));
            }
            return names;
        }

        /// <summary>
        /// Marks the requirements on <paramref name="versions"/> weak, but only when every symbol bound to them is in
        /// <paramref name="allowedSymbols"/> (a symbol the library really uses must not be hidden behind a weak flag).
        /// Returns what was done in one line, for the build log. Throws <see cref="InvalidDataException"/> when an
        /// unexpected symbol is bound to one of the versions.
        /// </summary>
        public static string Weaken(byte[] elf, ICollection<string> versions, ICollection<string> allowedSymbols, out bool changed)
        {
            changed = false;
            if (!IsElf64LittleEndian(elf)) return "not a 64-bit little-endian ELF file; left as it is";
            var done = new List<string>();
            foreach (var need in ReadNeeds(elf).Where(n => versions.Contains(n.Version)))
            {
                var bound = SymbolsBoundTo(elf, need.Index);
                var unexpected = bound.Where(s => !allowedSymbols.Contains(s)).ToList();
                if (unexpected.Count > 0)
                    throw new InvalidDataException(
                        $"{need.Library} version {need.Version} is needed by symbols that may be called ({string.Join(", ", unexpected)}); refusing to mark it weak");
                if (need.IsWeak) { done.Add($"{need.Version} already weak"); continue; }
                ushort flags = (ushort)(need.Flags | VerFlagWeak);
                elf[need.FlagsOffset] = (byte)flags;
                elf[need.FlagsOffset + 1] = (byte)(flags >> 8);
                changed = true;
                done.Add($"{need.Version} marked weak (bound only to {string.Join(", ", bound)})");
            }
            return done.Count == 0 ? "no requirement on " + string.Join(", ", versions) : string.Join("; ", done);
        }

        static List<Section> ReadSections(byte[] elf)
        {
            if (!IsElf64LittleEndian(elf)) throw new InvalidDataException("not a 64-bit little-endian ELF file");
            long shoff = (long)U64(elf, 0x28);
            ushort shentsize = U16(elf, 0x3A);
            ushort shnum = U16(elf, 0x3C);
            var sections = new List<Section>(shnum);
            for (int i = 0; i < shnum; i++)
            {
                long h = shoff + (long)i * shentsize;
                CheckRange(elf, h, 64);
                var s = new Section(U32(elf, h + 4), (long)U64(elf, h + 0x18), (long)U64(elf, h + 0x20), U32(elf, h + 0x28), (long)U64(elf, h + 0x38));
                if (s.Type == ShtGnuVerneed || s.Type == ShtGnuVerdef || s.Type == ShtDynsym || s.Type == ShtGnuVersym)
                    CheckRange(elf, s.Offset, s.Size);
                sections.Add(s);
            }
            return sections;
        }

        static string ReadString(byte[] elf, Section strtab, uint offset)
        {
            long start = strtab.Offset + offset;
            long end = start;
            long limit = Math.Min(elf.Length, strtab.Offset + strtab.Size);
            while (end < limit && elf[end] != 0) end++;
            if (start > limit) throw new InvalidDataException("ELF string offset outside its table");
            return Encoding.ASCII.GetString(elf, (int)start, (int)(end - start));
        }

        static void CheckRange(byte[] elf, long offset, long size)
        {
            if (offset < 0 || size < 0 || offset + size > elf.Length)
                throw new InvalidDataException($"ELF structure at offset {offset} (size {size}) lies outside the {elf.Length}-byte file");
        }

        static ushort U16(byte[] b, long o) { CheckRange(b, o, 2); return (ushort)(b[o] | b[o + 1] << 8); }
        static uint U32(byte[] b, long o) { CheckRange(b, o, 4); return (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24); }
        static ulong U64(byte[] b, long o) => U32(b, o) | (ulong)U32(b, o + 4) << 32;
    }

#if !DIFFII_RUNTIME
    /// <summary>MSBuild task: weakens version requirements in copies of native libraries (see the file header).</summary>
    public sealed class WeakenElfVersionNeeds : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required] public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();
        [Microsoft.Build.Framework.Required] public string Versions { get; set; } = "";
        [Microsoft.Build.Framework.Required] public string AllowedSymbols { get; set; } = "";

        public override bool Execute()
        {
            var versions = Split(Versions);
            var allowed = Split(AllowedSymbols);
            foreach (var item in Files)
            {
                string path = item.GetMetadata("FullPath");
                if (!File.Exists(path)) continue;
                try
                {
                    byte[] bytes = File.ReadAllBytes(path);
                    string what = ElfVersionNeeds.Weaken(bytes, versions, allowed, out bool changed);
                    if (changed)
                    {
                        // Write a new file and move it over the old one: the output copy may be a hard link into the
                        // NuGet cache, which must never be edited.
                        string temp = path + ".weak-tmp";
                        // (MSBuild compiles inline tasks against netstandard2.0: no File.Move overwrite overload.)
                        File.WriteAllBytes(temp, bytes);
                        File.Delete(path);
                        File.Move(temp, path);
                    }
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, $"{path}: {what}");
                }
                catch (InvalidDataException e)
                {
                    Log.LogError($"{path}: {e.Message}");
                }
            }
            return !Log.HasLoggedErrors;
        }

        static HashSet<string> Split(string list) =>
            new HashSet<string>(list.Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()));
    }
#endif
}

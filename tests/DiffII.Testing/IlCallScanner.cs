using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace DiffII.Testing;

/// <summary>One method body's call to another method, as names ("Namespace.Type::Method(ParamTypes)").</summary>
public sealed record IlCall(string Caller, string Callee);

/// <summary>
/// Reads the IL of every method body in an assembly file and lists the methods each one calls (call, callvirt,
/// newobj, ldftn), by name. Uses only System.Reflection.Metadata; the opcode table comes from System.Reflection.Emit.
/// </summary>
public static class IlCallScanner
{
    static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    public static List<IlCall> Calls(string assemblyPath)
    {
        using var stream = File.OpenRead(assemblyPath);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var names = new MemberNames(md);
        var calls = new List<IlCall>();
        foreach (var handle in md.MethodDefinitions)
        {
            var method = md.GetMethodDefinition(handle);
            if (method.RelativeVirtualAddress == 0) continue;
            string caller = names.Of(handle);
            var il = pe.GetMethodBody(method.RelativeVirtualAddress).GetILReader();
            while (il.RemainingBytes > 0)
            {
                short value = il.ReadByte();
                if (value == 0xFE) value = unchecked((short)(0xFE00 | il.ReadByte()));
                if (!OpCodesByValue.TryGetValue(value, out var op))
                    throw new InvalidDataException($"{assemblyPath}: unknown IL opcode 0x{value:X} in {caller}");
                if (op.OperandType == OperandType.InlineMethod)
                {
                    var token = MetadataTokens.EntityHandle(il.ReadInt32());
                    if (op == OpCodes.Call || op == OpCodes.Callvirt || op == OpCodes.Newobj || op == OpCodes.Ldftn || op == OpCodes.Ldvirtftn)
                        calls.Add(new IlCall(caller, names.Of(token)));
                    continue;
                }
                SkipOperand(ref il, op.OperandType);
            }
        }
        return calls;
    }

    static void SkipOperand(ref BlobReader il, OperandType type)
    {
        switch (type)
        {
            case OperandType.InlineNone: break;
            case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar: il.ReadByte(); break;
            case OperandType.InlineVar: il.ReadInt16(); break;
            case OperandType.InlineI8 or OperandType.InlineR: il.ReadInt64(); break;
            case OperandType.InlineSwitch:
                int count = il.ReadInt32();
                for (int i = 0; i < count; i++) il.ReadInt32();
                break;
            default: il.ReadInt32(); break;
        }
    }

    /// <summary>Stable names for method handles of any kind (definition, reference, generic instance).</summary>
    sealed class MemberNames(MetadataReader md)
    {
        readonly SignatureNames _signatures = new();

        public string Of(EntityHandle handle) => handle.Kind switch
        {
            HandleKind.MethodDefinition => Of((MethodDefinitionHandle)handle),
            HandleKind.MemberReference => OfReference((MemberReferenceHandle)handle),
            HandleKind.MethodSpecification => Of(md.GetMethodSpecification((MethodSpecificationHandle)handle).Method),
            _ => handle.Kind.ToString(),
        };

        public string Of(MethodDefinitionHandle handle)
        {
            var method = md.GetMethodDefinition(handle);
            var signature = method.DecodeSignature(_signatures, null);
            return $"{TypeName(method.GetDeclaringType())}::{md.GetString(method.Name)}({string.Join(",", signature.ParameterTypes)})";
        }

        string OfReference(MemberReferenceHandle handle)
        {
            var member = md.GetMemberReference(handle);
            string parent = member.Parent.Kind switch
            {
                HandleKind.TypeReference => _signatures.GetTypeFromReference(md, (TypeReferenceHandle)member.Parent, 0),
                HandleKind.TypeDefinition => TypeName((TypeDefinitionHandle)member.Parent),
                HandleKind.TypeSpecification => _signatures.GetGenericHead(md.GetTypeSpecification((TypeSpecificationHandle)member.Parent)),
                _ => member.Parent.Kind.ToString(),
            };
            string parameters = member.GetKind() == MemberReferenceKind.Method
                ? string.Join(",", member.DecodeMethodSignature(_signatures, null).ParameterTypes)
                : "";
            return $"{parent}::{md.GetString(member.Name)}({parameters})";
        }

        string TypeName(TypeDefinitionHandle handle) => _signatures.GetTypeFromDefinition(md, handle, 0);
    }

    /// <summary>Type names as "Namespace.Outer+Inner", generic arguments left out, so references and definitions agree.</summary>
    sealed class SignatureNames : ISignatureTypeProvider<string, object?>
    {
        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind)
        {
            var type = reader.GetTypeDefinition(handle);
            string name = reader.GetString(type.Name);
            if (type.IsNested) return GetTypeFromDefinition(reader, type.GetDeclaringType(), 0) + "+" + name;
            string ns = reader.GetString(type.Namespace);
            return ns.Length == 0 ? name : ns + "." + name;
        }

        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind)
        {
            var type = reader.GetTypeReference(handle);
            string name = reader.GetString(type.Name);
            if (type.ResolutionScope.Kind == HandleKind.TypeReference)
                return GetTypeFromReference(reader, (TypeReferenceHandle)type.ResolutionScope, 0) + "+" + name;
            string ns = reader.GetString(type.Namespace);
            return ns.Length == 0 ? name : ns + "." + name;
        }

        public string GetGenericHead(TypeSpecification spec) => spec.DecodeSignature(this, null);
        public string GetTypeFromSpecification(MetadataReader reader, object? context, TypeSpecificationHandle handle, byte rawTypeKind) =>
            reader.GetTypeSpecification(handle).DecodeSignature(this, context);
        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();
        public string GetSZArrayType(string elementType) => elementType + "[]";
        public string GetArrayType(string elementType, ArrayShape shape) => elementType + "[" + new string(',', shape.Rank - 1) + "]";
        public string GetByReferenceType(string elementType) => elementType + "&";
        public string GetPointerType(string elementType) => elementType + "*";
        public string GetPinnedType(string elementType) => elementType;
        public string GetGenericInstantiation(string genericType, System.Collections.Immutable.ImmutableArray<string> typeArguments) => genericType;
        public string GetGenericMethodParameter(object? context, int index) => "!!" + index;
        public string GetGenericTypeParameter(object? context, int index) => "!" + index;
        public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;
        public string GetFunctionPointerType(MethodSignature<string> signature) => "fnptr";
    }
}

// The matrix runs beside five other test assemblies on CI's two cores, one of which checks a wall-clock limit
// (the ML.NET end-to-end test). One row at a time keeps this assembly a light neighbour; it still ends well
// before the longest assembly does. (ReliabilityMatrix.Run also keeps libtorch to one thread.)
[assembly: CollectionBehavior(MaxParallelThreads = 1)]

from vgraph.cli.bench_mol_roundtrip import main

if __name__ == "__main__":
    main()

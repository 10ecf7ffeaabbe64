from vgraph.cli.bench_vs_pyg import main

if __name__ == "__main__":
    main()

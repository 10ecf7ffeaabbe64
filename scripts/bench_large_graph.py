from vgraph.cli.bench_large_graph import main

if __name__ == "__main__":
    main()

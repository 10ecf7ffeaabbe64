from vgraph.cli.bench_kernels import main

if __name__ == "__main__":
    main()

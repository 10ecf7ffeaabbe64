from vgraph.cli.bench_ddi_ablation import main

if __name__ == "__main__":
    main()

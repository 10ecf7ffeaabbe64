from vgraph.cli.linkpred import main

if __name__ == "__main__":
    main()

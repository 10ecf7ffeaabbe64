from vgraph.cli.ddi import main

if __name__ == "__main__":
    main()

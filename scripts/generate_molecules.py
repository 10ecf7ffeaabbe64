from vgraph.cli.generate import main

if __name__ == "__main__":
    main()

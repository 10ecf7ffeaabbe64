from vgraph.cli.molgen import main

if __name__ == "__main__":
    main()

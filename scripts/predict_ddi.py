from vgraph.cli.predict_ddi import main

if __name__ == "__main__":
    main()

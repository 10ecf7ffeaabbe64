"""Every bad-input case of a user's graph gives one clear error naming the file and line."""
import networkx as nx
import numpy as np
import pytest
import torch

from vgraph.data import load_edge_list, load_graph, from_networkx_graph, read_features
from vgraph.errors import DataFormatError, MissingDataError, VGraphError
from vgraph.ops import SparseGraph


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_good_edge_list_with_header_comments_and_tabs(tmp_path):
    p = write(tmp_path, "g.tsv", "src\tdst\n# comment\n0\t1\n1\t2\n\n2\t0\n")
    d = load_edge_list(p)
    assert d.num_nodes == 3 and d.edge_index.size(1) == 6  # symmetric, 3 undirected edges
    assert torch.equal(d.x, torch.eye(3))


def test_each_edge_once_is_read_as_undirected_with_a_plain_note(tmp_path, capsys):
    p = write(tmp_path, "g.csv", "0,1\n1,2\n")
    d = load_edge_list(p)
    assert d.edge_index.size(1) == 4
    err = capsys.readouterr().err
    assert err == f"note: {p} lists each edge once; read as an undirected graph of 2 edges\n"
    assert "directed" not in err.replace("undirected", "") and ".py" not in err
    # a list with both directions says nothing; a partial one says how many lack a reverse
    load_edge_list(write(tmp_path, "s.csv", "0,1\n1,0\n"))
    assert capsys.readouterr().err == ""
    load_edge_list(write(tmp_path, "m.csv", "0,1\n1,0\n1,2\n"))
    assert "1 of 3 listed edges have no reverse listed" in capsys.readouterr().err


@pytest.mark.parametrize("text,line,what", [
    ("0,1\n1,x\n", 2, "integers"),
    ("0,1\n1,2.5\n", 2, "integers"),
    ("0,1\n-1,2\n", 2, "negative"),
    ("0,1\n3\n", 2, "two node ids"),
])
def test_bad_ids_name_file_and_line(tmp_path, text, line, what):
    p = write(tmp_path, "bad.csv", text)
    with pytest.raises(DataFormatError, match=rf"bad.csv, line {line}: .*{what}"):
        load_edge_list(p)


def test_out_of_range_id_against_feature_rows(tmp_path):
    p = write(tmp_path, "g.csv", "0,1\n1,5\n")
    f = write(tmp_path, "x.csv", "1,0\n0,1\n1,1\n")
    with pytest.raises(DataFormatError, match=r"feature file .*x.csv has 3 rows, but .*g.csv uses "
                                              r"node id 5: it needs a row for every node 0..5 \(6 rows\)"):
        load_edge_list(p, features=f)


def test_feature_file_errors(tmp_path):
    g = write(tmp_path, "g.csv", "0,1\n1,2\n2,0\n")
    with pytest.raises(DataFormatError, match=r"x.csv, line 2: NaN or inf"):
        load_edge_list(g, features=write(tmp_path, "x.csv", "1,0\nnan,1\n1,1\n"))
    with pytest.raises(DataFormatError, match=r"y.csv, line 3: 1 values, expected 2"):
        load_edge_list(g, features=write(tmp_path, "y.csv", "1,0\n0,1\n1\n"))
    np.save(tmp_path / "z.npy", np.array([[1.0], [np.inf], [0.0]]))
    with pytest.raises(DataFormatError, match=r"z.npy: row 1 holds NaN or inf"):
        read_features(tmp_path / "z.npy")
    # too few rows: blamed on the feature file, not the edge list
    with pytest.raises(DataFormatError, match=r"^feature file \S*w.csv has 2 rows, but \S*g.csv uses node id 2"):
        load_edge_list(g, features=write(tmp_path, "w.csv", "1,0\n0,1\n"))
    # too many rows: an error naming both counts, not silently added isolated nodes
    with pytest.raises(DataFormatError, match=r"v.csv has 5 rows, but \S*g.csv has 3 nodes \(ids 0..2\)"):
        load_edge_list(g, features=write(tmp_path, "v.csv", "1,0\n0,1\n1,1\n0,0\n1,1\n"))


def test_a_directory_is_not_a_file(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(DataFormatError, match=r"edge-list file \S+ is a directory, not a file"):
        load_edge_list(tmp_path / "d")
    g = write(tmp_path, "g.csv", "0,1\n")
    with pytest.raises(DataFormatError, match=r"feature file \S+ is a directory, not a file"):
        load_edge_list(g, features=tmp_path / "d")


@pytest.mark.parametrize("name,sep", [("g.csv.gz", ","), ("g.tsv.gz", "\t")])
def test_gzipped_edge_lists_are_read(tmp_path, name, sep):
    import gzip
    p = tmp_path / name
    p.write_bytes(gzip.compress(f"src{sep}dst\n0{sep}1\n1{sep}0\n1{sep}2\n2{sep}1\n".encode()))
    d = load_edge_list(p)
    assert d.num_nodes == 3 and d.edge_index.size(1) == 4


def test_named_nodes_are_renumbered_in_order_of_appearance(tmp_path):
    d = load_edge_list(write(tmp_path, "n.csv", "source,target\nalice,bob\nbob,carol\ncarol,alice\n"))
    assert d.node_ids == ["alice", "bob", "carol"] and d.num_nodes == 3
    assert d.edge_index.size(1) == 6
    d = load_edge_list(write(tmp_path, "m.tsv", "P1\tP2\nP2\tP3\n"))  # no header line
    assert d.node_ids == ["P1", "P2", "P3"]
    # integer ids from the first edge on: a later name is a typo, named by its line
    with pytest.raises(DataFormatError, match=r"line 2: node ids must be integers"):
        load_edge_list(write(tmp_path, "t.csv", "0,1\n1,bob\n"))
    with pytest.raises(DataFormatError, match="cannot be matched"):
        load_edge_list(tmp_path / "n.csv", features=write(tmp_path, "x.csv", "1\n2\n3\n"))


def test_empty_graph(tmp_path):
    with pytest.raises(DataFormatError, match="empty"):
        load_edge_list(write(tmp_path, "e.csv", "# nothing\n\n"))
    with pytest.raises(DataFormatError, match="no edges besides self-loops"):
        load_edge_list(write(tmp_path, "l.csv", "0,0\n1,1\n"))
    with pytest.raises(DataFormatError, match="empty"):
        from_networkx_graph(nx.Graph())


def test_missing_files(tmp_path, monkeypatch):
    with pytest.raises(MissingDataError, match="nope.csv"):
        load_edge_list(tmp_path / "nope.csv")
    monkeypatch.setenv("VGRAPH_OFFLINE", "1")
    with pytest.raises(MissingDataError, match=r"planetoid/PubMed/raw/ind\.pubmed\.x"):
        load_graph("PubMed", root=tmp_path)  # Cora and CiteSeer would come from the package
    from vgraph.data import load_planetoid
    with pytest.raises(MissingDataError, match=r"planetoid/Cora/raw/ind\.cora\.x"):
        load_planetoid("Cora", root=tmp_path, packaged=False)


def test_networkx_graph_with_features():
    g = nx.Graph()
    g.add_node("a", x=[1.0, 0.0])
    g.add_node("b", x=[0.0, 1.0])
    g.add_edge("a", "b")
    d = from_networkx_graph(g)
    assert d.num_nodes == 2 and d.x.shape == (2, 2) and d.edge_index.size(1) == 2


def test_sparse_graph_rejects_out_of_range_edge_index():
    with pytest.raises(DataFormatError, match=r"column 1 is \[2, 7\].*\[0, 4\]"):
        SparseGraph(torch.tensor([[0, 2], [1, 7]]), 5)
    with pytest.raises(DataFormatError, match="integer"):
        SparseGraph(torch.tensor([[0.0], [1.0]]), 5)
    assert issubclass(DataFormatError, VGraphError)


def test_registry_refuses_a_feature_file_for_a_named_dataset(tmp_path):
    from vgraph.data import load
    with pytest.raises(DataFormatError, match="Cora comes with its own features"):
        load("Cora", features=tmp_path / "x.csv")
    with pytest.raises(DataFormatError, match="unknown dataset 'Coraa'"):
        load("Coraa")

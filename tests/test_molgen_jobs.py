"""The molecule jobs as a user runs them: `vgraph generate` (the README's command, with FCD,
offline), `vgraph molgen` to the end with FCD, one-line errors for bad flags and for a missing
fcd-torch, the property plot, and `vgraph bench mol-roundtrip`."""
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors

from conftest import dataset_path
from vgraph.cli import main as vgraph_main

REPO = Path(__file__).resolve().parent.parent
GOOD = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "C1CC1", "OCCO", "CC#N", "NC(=O)N", "c1ccncc1", "CCOC",
        "CC(C)O", "C=CC=O", "OC1CCOC1", "CC(F)(F)F", "c1ccoc1"]

pytestmark = pytest.mark.usefixtures("one_thread")


def test_readme_generate_command_exits_0_with_fcd_offline(tmp_path):
    """`vgraph generate --num-samples 200 --out runs/gen` on a fresh offline machine: no
    dataset anywhere, no --no-fcd; FCD comes from ChemNet (in the fcd-torch wheel) against the
    QM9 test-set statistics shipped in the package."""
    env = {**os.environ, "VGRAPH_DATA": str(tmp_path / "no-data"), "VGRAPH_OFFLINE": "1",
           "VGRAPH_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "gen"
    proc = subprocess.run([sys.executable, "-m", "vgraph.cli", "generate", "--num-samples", "200", "--out", str(out),
                           "--no-progress"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    m = summary["metrics"]
    assert isinstance(m["FCD/Test"], float) and math.isfinite(m["FCD/Test"]) and m["FCD/Test"] > 0
    assert m["validity"] == 1.0 and m["num_generated"] == 200
    assert m["novelty"] is None and any("shipped" in n for n in m["notes"])  # says what it left out
    assert {"samples.smi", "grid.png", "properties.png", "properties.csv"} <= {p.name for p in out.iterdir()}


def _load_script(name):
    """``scripts/<name>.py`` as a module (the maintainer scripts are not in the package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(argv, capsys):
    """``vgraph <argv>`` in-process: (exit code, stdout, stderr)."""
    try:
        code = vgraph_main(argv)
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    if isinstance(code, str):  # sys.exit("error: ..."): Python prints it and exits 1
        return 1, cap.out, cap.err + code + "\n"
    return code, cap.out, cap.err


@pytest.mark.parametrize("argv, message", [
    (["generate", "--num-samples", "0"], "--num-samples: must be >= 1, got 0"),
    (["generate", "--temperature", "0"], "--temperature: must be > 0, got 0"),
    (["generate", "--flow-steps", "0"], "--flow-steps: must be >= 1, got 0"),
    (["generate", "--batch-size", "0"], "--batch-size: must be >= 1, got 0"),
    (["generate", "--grid", "-1"], "--grid: must be >= 0, got -1"),
    (["generate", "--threads", "0"], "--threads: must be >= 1, got 0"),
    (["generate", "--device", "tpu"], "--device: unknown device 'tpu'"),
    (["molgen", "--epochs", "0"], "--epochs: must be > 0, got 0"),
    (["molgen", "--batch-size", "0"], "--batch-size: must be >= 1, got 0"),
    (["molgen", "--flow-steps", "0"], "--flow-steps: must be >= 1, got 0"),
    (["molgen", "--max-steps", "0"], "--max-steps: must be >= 1, got 0"),
    (["molgen", "--lr", "-1"], "--lr: must be > 0, got -1"),
    (["molgen", "--hidden", "0"], "--hidden: must be >= 1, got 0"),
    (["molgen", "--latent", "0"], "--latent: must be >= 1, got 0"),
    (["molgen", "--ema", "1"], "--ema: must be < 1, got 1"),
    (["molgen", "--num-samples", "-1"], "--num-samples: must be >= 0, got -1"),
    (["molgen", "--beta", "-1"], "--beta: must be >= 0, got -1"),
    (["molgen", "--model", "gan"], "invalid choice: 'gan'"),
    (["bench", "mol-roundtrip", "--limit", "0"], "--limit: must be >= 1, got 0"),
])
def test_bad_flags_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code, out, err = _run(argv + ["--out", str(tmp_path / "o")], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "error:" in lines[0], err
    assert not (tmp_path / "o").exists()  # refused before anything ran


def test_missing_fcd_torch_is_one_clear_line(tmp_path, capsys, monkeypatch):
    """Without fcd-torch, asking for FCD fails at once with one line (before any training);
    --no-fcd still works."""
    import vgraph.metrics.molecules as mm
    monkeypatch.setitem(sys.modules, "fcd_torch", None)  # `import fcd_torch` raises ImportError
    monkeypatch.setenv("VGRAPH_DATA", str(tmp_path / "no-data"))  # QM9 statistics shipped in the package
    monkeypatch.setenv("VGRAPH_OFFLINE", "1")
    mm._fcd_model.cache_clear()
    try:
        data = tmp_path / "mols.smi"
        data.write_text("\n".join(GOOD * 3) + "\n")
        for argv in (["generate", "--num-samples", "20"],
                     ["molgen", "--dataset", str(data), "--max-steps", "2", "--hidden", "8"]):
            code, out, err = _run(argv + ["--out", str(tmp_path / argv[0]), "--no-progress"], capsys)
            assert code == 1
            assert err.strip().splitlines() == [err.strip()] and "fcd-torch" in err and "--no-fcd" in err, err
            assert not (tmp_path / argv[0] / "model.pt").exists()
        code, _, err = _run(["generate", "--num-samples", "20", "--no-fcd", "--grid", "0",
                             "--no-plot", "--out", str(tmp_path / "ok"), "--no-progress"], capsys)
        assert code == 0, err
        assert json.loads((tmp_path / "ok" / "summary.json").read_text())["metrics"]["FCD/Test"] is None
    finally:
        mm._fcd_model.cache_clear()


def test_molgen_to_the_end_writes_summary_with_fcd(tmp_path, capsys):
    """A training run ends with model.pt, samples and summary.json holding FCD (no --no-fcd),
    and its model.pt is what `vgraph generate --checkpoint` and `vgraph.load` read."""
    import vgraph
    data = tmp_path / "mols.smi"
    data.write_text("\n".join(GOOD * 4) + "\n")
    run = tmp_path / "run"
    code, out, err = _run(["molgen", "--dataset", str(data), "--max-steps", "3", "--batch-size", "8",
                           "--hidden", "16", "--latent", "4", "--layers", "1", "--num-samples", "30",
                           "--threads", "1", "--no-progress", "--out", str(run)], capsys)
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert isinstance(summary["metrics"]["FCD/Test"], float) and summary["metrics"]["validity"] == 1.0
    assert summary["command"].startswith("vgraph molgen --dataset")
    model, info = vgraph.load(run / "model.pt", with_info=True)
    assert type(model).__name__ == "MolVAE" and info.meta["dataset"] == str(data)
    # rerunning into the same folder is refused unless --resume / --overwrite
    code, _, err = _run(["molgen", "--dataset", str(data), "--max-steps", "3", "--out", str(run)], capsys)
    assert code == 1 and "already holds a run" in err
    gen = tmp_path / "gen"
    code, out, err = _run(["generate", "--checkpoint", str(run / "model.pt"), "--num-samples", "10",
                           "--no-fcd", "--no-progress", "--out", str(gen)], capsys)
    assert code == 0, err
    assert any("not a benchmark" in n for n in json.loads((gen / "summary.json").read_text())["metrics"]["notes"])


def test_generate_with_a_catflow_file(tmp_path, capsys):
    from vgraph.chem import Vocabulary, clean_smiles
    from vgraph.tasks.molgen import build_generator, save_generator
    mols, _, _ = clean_smiles(GOOD)
    torch.manual_seed(0)
    model = build_generator("catflow", Vocabulary.build(mols), 6, atom_counts=[0, 1, 2, 3, 2, 1, 1],
                            hidden=8, num_layers=1)
    save_generator(tmp_path / "cf.pt", model, "qm9")
    code, out, err = _run(["generate", "--checkpoint", str(tmp_path / "cf.pt"), "--num-samples", "6",
                           "--flow-steps", "2", "--decode", "valence", "--reference", "none", "--no-fcd",
                           "--no-progress", "--out", str(tmp_path / "gen")], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "gen" / "summary.json").read_text())
    assert summary["model"] == "catflow" and summary["sampler"] == {"steps": 2, "decode": "valence", "schedule": "uniform"}
    assert len((tmp_path / "gen" / "samples.smi").read_text().splitlines()) == 6


def test_property_plot_values_match_rdkit_on_the_samples(tmp_path, capsys):
    """properties.png is drawn from the values in properties.csv, which are RDKit's logP, SA,
    QED and weight of each valid line of samples.smi, in order."""
    from vgraph.metrics.molecules import sa_score
    out = tmp_path / "gen"
    code, _, err = _run(["generate", "--num-samples", "60", "--reference", "none", "--no-fcd", "--grid", "0",
                         "--no-progress", "--out", str(out)], capsys)
    assert code == 0, err
    assert (out / "properties.png").stat().st_size > 10_000
    samples = [s for s in (out / "samples.smi").read_text().splitlines() if s and Chem.MolFromSmiles(s)]
    with open(out / "properties.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["smiles"] for r in rows] == samples
    for row in rows:
        mol = Chem.MolFromSmiles(row["smiles"])
        want = {"logP": Crippen.MolLogP(mol), "SA": sa_score(mol), "QED": QED.qed(mol),
                "weight": Descriptors.MolWt(mol)}
        for k, v in want.items():
            assert float(row[k]) == pytest.approx(v, rel=1e-5, abs=1e-5), (row["smiles"], k)


def test_plot_properties_returns_what_it_draws_against_a_reference(tmp_path):
    from vgraph.tasks.molgen import plot_properties
    ref = {k: np.linspace(0, 1, 50) for k in ("logP", "SA", "QED", "weight")}
    values = plot_properties(["CCO", "", "not-a-smiles", "c1ccccc1"], ref, tmp_path / "p.png")
    assert values["weight"] == pytest.approx([Descriptors.MolWt(Chem.MolFromSmiles(s)) for s in ("CCO", "c1ccccc1")])
    assert (tmp_path / "p.png").is_file()


def test_bench_mol_roundtrip_and_the_registry(tmp_path, capsys):
    dataset_path("molecules", "qm9.csv.gz")
    from vgraph.data.registry import load
    splits = load("qm9")
    assert set(splits) == {"train", "test"} and len(splits["test"]) == 13082
    code, out, err = _run(["bench", "mol-roundtrip", "--datasets", "qm9", "--limit", "40",
                           "--out", str(tmp_path / "rt")], capsys)
    assert code == 0, err
    rep = json.loads((tmp_path / "rt" / "roundtrip.json").read_text())["qm9"]
    assert rep["molecules"] == 40 and rep["fraction_with_hs"] == 1.0 and "qm9: 40 molecules" in out


def test_generate_with_a_bad_checkpoint_is_one_line(tmp_path, capsys):
    (tmp_path / "junk.pt").write_text("junk")
    for path, message in ((tmp_path / "nope.pt", "does not exist"), (tmp_path / "junk.pt", "corrupt")):
        code, _, err = _run(["generate", "--checkpoint", str(path), "--out", str(tmp_path / "o")], capsys)
        assert code == 1 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_molgen_resume_extends_epochs_and_names_a_changed_flag(tmp_path, capsys):
    data = tmp_path / "mols.smi"
    data.write_text("\n".join(GOOD * 6) + "\n")
    run = tmp_path / "run"
    base = ["molgen", "--dataset", str(data), "--batch-size", "16", "--hidden", "16", "--latent", "4",
            "--layers", "1", "--no-progress", "--out", str(run)]
    code, _, err = _run(base + ["--epochs", "1", "--num-samples", "0"], capsys)
    assert code == 0, err
    first = json.loads((run / "summary.json").read_text())
    # more epochs and a different sampling: the run continues where it stopped
    code, _, err = _run(base + ["--epochs", "2", "--num-samples", "10", "--no-fcd", "--resume"], capsys)
    assert code == 0, err
    second = json.loads((run / "summary.json").read_text())
    assert second["steps"] == 2 * first["steps"] and "metrics" in second
    epochs = [json.loads(line)["epoch"] for line in (run / "diagnostics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1]
    code, _, err = _run(base + ["--epochs", "2", "--lr", "0.01", "--resume"], capsys)
    assert code == 1 and "lr: 0.001 -> 0.01" in err


def test_check_samples_recounts_with_rdkit(tmp_path, capsys):
    mod = _load_script("check_samples")
    (tmp_path / "samples.smi").write_text("CCO\n\nOCC\nC1CC1\nC.C\n")
    assert mod.recount(["CCO", "", "OCC", "C1CC1", "C.C"]) == {
        "samples": 5, "validity": 0.8, "validity_connected": 0.6, "uniqueness": 0.75}
    summary = {"metrics": {"validity": 0.8, "validity_connected": 0.6, "uniqueness": 0.75}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert mod.main([str(tmp_path)]) == 0
    summary["metrics"]["validity"] = 0.9
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert mod.main([str(tmp_path)]) == 1 and "MISMATCH" in capsys.readouterr().out
    assert mod.main([str(tmp_path / "nowhere")]) == 2


def test_generate_with_the_shipped_catflow_by_name(tmp_path, capsys):
    """`--checkpoint catflow` is the QM9 CatFlow shipped in the package (float32 weights; its
    atom-count histogram, past float16's range, kept as stored)."""
    from vgraph.tasks.molgen import SHIPPED, load_generator
    assert SHIPPED["catflow"].is_file() and SHIPPED["catflow"].stat().st_size < 5_000_000
    model, info = load_generator("catflow")
    assert info["kind"] == "catflow" and info["dataset"] == "qm9"
    assert torch.isfinite(model.atom_counts).all() and float(model.atom_counts.max()) > 65504
    code, out, err = _run(["generate", "--checkpoint", "catflow", "--num-samples", "20", "--flow-steps", "3",
                           "--reference", "none", "--no-fcd", "--grid", "0", "--no-plot", "--no-progress",
                           "--out", str(tmp_path / "gen")], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "gen" / "summary.json").read_text())
    assert summary["model"] == "catflow" and summary["checkpoint"].endswith("qm9_catflow.pt")
    assert len((tmp_path / "gen" / "samples.smi").read_text().splitlines()) == 20


def test_half_storage_keeps_a_tensor_past_the_float16_range(tmp_path):
    from vgraph.chem import Vocabulary, clean_smiles
    from vgraph.tasks.molgen import build_generator, load_generator, save_generator
    mols, _, _ = clean_smiles(GOOD)
    torch.manual_seed(0)
    counts = [0, 1, 70000, 1e6, 2, 1, 1]  # past float16's 65,504
    model = build_generator("catflow", Vocabulary.build(mols), 6, atom_counts=counts, hidden=8, num_layers=1)
    save_generator(tmp_path / "cf.pt", model, "qm9", half=True)
    raw = torch.load(tmp_path / "cf.pt", map_location="cpu", weights_only=False)
    state = next(v for v in raw.values() if isinstance(v, dict) and "atom_counts" in v) \
        if "atom_counts" not in raw.get("model", {}) else raw["model"]
    weights = [k for k, v in state.items() if v.is_floating_point() and k != "atom_counts"]
    assert weights and all(state[k].dtype == torch.float16 for k in weights if k in dict(model.named_parameters()))
    assert state["atom_counts"].dtype == model.atom_counts.dtype
    back, _ = load_generator(tmp_path / "cf.pt")
    assert torch.equal(back.atom_counts, model.atom_counts) and torch.isfinite(back.atom_counts).all()


def test_init_from_copies_the_weights_and_names_a_mismatch(tmp_path, capsys):
    """`--init-from MODEL` starts a run from another run's weights (fresh optimiser and lr
    schedule); a file of another size or kind is one line naming what differs."""
    from vgraph.tasks.molgen import build_generator, init_generator, load_generator
    data = tmp_path / "mols.smi"
    data.write_text("\n".join(GOOD * 4) + "\n")
    base = ["molgen", "--dataset", str(data), "--batch-size", "8", "--latent", "4", "--layers", "1",
            "--num-samples", "0", "--no-progress"]
    code, _, err = _run(base + ["--max-steps", "2", "--hidden", "16", "--out", str(tmp_path / "a")], capsys)
    assert code == 0, err
    src, _ = load_generator(tmp_path / "a" / "model.pt")
    fresh = build_generator("molvae", src.vocab, src.max_atoms, hidden=16, latent=4, num_layers=1)
    assert any(not torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), src.state_dict().values()))
    init_generator(fresh, tmp_path / "a" / "model.pt")
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), src.state_dict().values()))
    # the CLI: training starts from those weights and says so
    code, out, err = _run(base + ["--max-steps", "1", "--hidden", "16", "--init-from", str(tmp_path / "a" / "model.pt"),
                                  "--out", str(tmp_path / "b")], capsys)
    assert code == 0, err
    assert "weights from" in out and "vgraph molgen --dataset" in out
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["config"]["init_from"].endswith("model.pt")
    # another width, another kind: refused before training, one line
    for extra, message in ((["--hidden", "32"], "hidden differs"),
                           (["--hidden", "16", "--model", "catflow"], "holds a molvae model")):
        code, _, err = _run(base + ["--max-steps", "1", *extra, "--init-from", str(tmp_path / "a" / "model.pt"),
                                    "--out", str(tmp_path / "c")], capsys)
        assert code == 1 and err.count("\n") == 1 and message in err, err
        assert not (tmp_path / "c" / "model.pt").exists()


def test_catflow_bf16_sampling_runs_the_denoiser_in_bfloat16(tmp_path, capsys, monkeypatch):
    """`vgraph generate --bf16`: the denoiser runs under bfloat16 autocast (seen in its output
    dtype), the posteriors and the state stay float32, the option is recorded; without it the
    samples are those of float32."""
    from vgraph.chem import Vocabulary, clean_smiles
    from vgraph.models.catflow import CatFlow
    from vgraph.tasks.molgen import build_generator, save_generator
    mols, _, _ = clean_smiles(GOOD)
    torch.manual_seed(0)
    model = build_generator("catflow", Vocabulary.build(mols), 6, atom_counts=[0, 1, 2, 3, 2, 1, 1],
                            hidden=8, num_layers=1).eval()
    dtypes = []
    original = CatFlow.denoise

    def spy(self, *a, **k):
        node, edge = original(self, *a, **k)
        dtypes.append(node.dtype)
        return node, edge
    monkeypatch.setattr(CatFlow, "denoise", spy)
    plain = model.sample_graphs(20, steps=3, generator=torch.Generator().manual_seed(1))
    assert set(dtypes) == {torch.float32}
    dtypes.clear()
    half = model.sample_graphs(20, steps=3, generator=torch.Generator().manual_seed(1), bf16=True)
    assert set(dtypes) == {torch.bfloat16} and len(half) == len(plain) == 20
    again = model.sample_graphs(20, steps=3, generator=torch.Generator().manual_seed(1))
    assert all(a[0] == b[0] and np.array_equal(a[1], b[1]) for a, b in zip(plain, again))
    save_generator(tmp_path / "cf.pt", model, "qm9")
    code, _, err = _run(["generate", "--checkpoint", str(tmp_path / "cf.pt"), "--num-samples", "6", "--bf16",
                         "--flow-steps", "2", "--reference", "none", "--no-fcd", "--grid", "0", "--no-plot",
                         "--no-progress", "--out", str(tmp_path / "gen")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "gen" / "summary.json").read_text())["sampler"]["bf16"] is True


def test_ship_generator_stores_float16_or_keeps_float32(tmp_path, capsys):
    """`scripts/ship_generator.py` re-saves a run's model for the package: float16 weights by
    default, the source's exact weights with `--float32`; the source's metrics go into the meta."""
    from vgraph.chem import Vocabulary, clean_smiles
    from vgraph.tasks.molgen import build_generator, load_generator, save_generator
    mod = _load_script("ship_generator")
    mols, _, _ = clean_smiles(GOOD)
    torch.manual_seed(0)
    model = build_generator("catflow", Vocabulary.build(mols), 6, atom_counts=[0, 1, 2, 3, 2, 1, 1],
                            hidden=8, num_layers=1)
    save_generator(tmp_path / "src.pt", model, "qm9")
    (tmp_path / "summary.json").write_text(json.dumps({"metrics": {"FCD/Test": 0.5}, "sampler": {"steps": 3}}))
    for name, extra in (("half.pt", []), ("full.pt", ["--float32"])):
        assert mod.main([str(tmp_path / "src.pt"), str(tmp_path / name),
                         "--metrics", str(tmp_path / "summary.json"), *extra]) == 0
    half, info = load_generator(tmp_path / "half.pt")
    full, _ = load_generator(tmp_path / "full.pt")
    assert info["meta"]["source_metrics"]["metrics"]["FCD/Test"] == 0.5
    pairs = [(k, v, full.state_dict()[k], half.state_dict()[k]) for k, v in model.state_dict().items()
             if v.is_floating_point()]
    assert all(torch.equal(v, f) for _, v, f, _ in pairs)
    assert any(not torch.equal(v, h) for _, v, _, h in pairs)
    assert all(torch.allclose(v, h, rtol=1e-3, atol=1e-3) for _, v, _, h in pairs)
    assert (tmp_path / "full.pt").stat().st_size > (tmp_path / "half.pt").stat().st_size
    assert mod.main([str(tmp_path / "nowhere.pt"), str(tmp_path / "x.pt")]) == 1
    assert "ship_generator:" in capsys.readouterr().err

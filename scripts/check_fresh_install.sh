#!/usr/bin/env bash
# A newcomer's first contact: a venv made from nothing, a clean clone, the README's install,
# VGRAPH_DATA unset and the network off; Quick start command 1, generate with FCD (the default
# MolVAE and the shipped CatFlow), predict-ddi with the shipped DrugBank model (a 10-row CSV of
# good and bad rows), a bad flag.
# Usage: bash scripts/check_fresh_install.sh [REPO]   (installs torch and vgraph: minutes)
set -u
rm -rf /tmp/fresh /tmp/fresh_clone /tmp/fresh_run
git clone -q "${1:-$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)}" /tmp/fresh_clone
python -m venv /tmp/fresh
cd /tmp/fresh_clone
source /tmp/fresh/bin/activate
unset VGRAPH_DATA PYTHONPATH
export VGRAPH_OFFLINE=1 VGRAPH_CACHE=/tmp/fresh_cache
rm -rf /tmp/fresh_cache
echo "== install"; date
pip install -q torch==2.13.0 && pip install -q . 2>&1 | grep -v "is ignored" ; date
mkdir -p /tmp/fresh_run && cd /tmp/fresh_run
echo "== vgraph --help"; vgraph --help; echo "rc=$?"
echo "== quick start 1"; /usr/bin/time -f "%e s" vgraph linkpred --dataset Cora --model vgae --runs 10 --no-progress --out runs/cora; echo "rc=$?"
echo "== generate"; /usr/bin/time -f "%e s" vgraph generate --num-samples 200 --out runs/gen --no-progress; echo "rc=$?"
python -c "import json; s=json.load(open('runs/gen/summary.json')); m=s['metrics']; print({k: m[k] for k in m if 'fcd' in k.lower() or k in ('validity','uniqueness')})"
echo "== generate, shipped CatFlow"; /usr/bin/time -f "%e s" vgraph generate --checkpoint catflow --flow-steps 100 --num-samples 200 --out runs/gen_cf --no-progress; echo "rc=$?"
echo "== predict-ddi, shipped model"
printf 'drug1,drug2\nDB01115,DB01136\n DB00363 , DB01154\ndb01115,CC(=O)Nc1ccc(O)cc1\nCC(C)Cc1ccc(cc1)C(C)C(=O)O,DB01136\nDB01115,DB99999\nDB00363,C1CC(((\n,\nDB01115,DB01136\nDB09000,DB00821\nCCOC(=O)C,CC(=O)N\n' > pairs10.csv
/usr/bin/time -f "%e s" vgraph predict-ddi --pairs pairs10.csv --out predictions.csv --no-progress; echo "rc=$?"
echo "== bad flag"; vgraph linkpred --epochs 0; echo "rc=$?"

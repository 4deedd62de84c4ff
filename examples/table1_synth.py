"""A Table I row on the synthetic dataset: AUC and pAUC (%) per machine type and their average,
k-NN (k = 4) on CLAP embeddings -- or on the weight-free acoustic features without a model file.

    PYTHONPATH=build/python python3 examples/table1_synth.py [msclap2023.gguf] [work-dir]
"""
import sys
import tempfile

import asdcap

model = sys.argv[1] if len(sys.argv) > 1 else None
work = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="asdcap-table1-")
asdcap.synthesize_dataset(f"{work}/data", seed=1)  # fan, pump, slider, valve; id_00, id_02
run = asdcap.detect(f"{work}/data", f"{work}/run", backend="msclap" if model else "acoustic", model=model)
row = [line for line in run.lines if line.kind != "id"]  # each machine's average, then the overall one
print("AUC/pAUC (%)  " + "  ".join(f"{line.machine:>13}" for line in row))
print("k-NN, k = 4   " + "  ".join(f"{100 * line.auc:6.2f}/{100 * line.pauc:6.2f}" for line in row))

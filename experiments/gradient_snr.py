"""Encoder-gradient SNR of reparameterised vs DReG IWAE gradients as K grows, at a trained model.

``python -m experiments.gradient_snr --workdir=<trained run> --num_samples=1,5,50``
"""

import jax
import ml_collections
from absl import app, flags

from vbounds.lab.analysis import gradient_snr, load_run

flags.DEFINE_string("workdir", None, "A trained run's directory (config.json, checkpoints/).")
flags.DEFINE_list("num_samples", ["1", "5", "50"], "Values of K.")
flags.DEFINE_list("estimators", ["reparam", "dreg"], "Gradient estimators of the IWAE bound.")
flags.DEFINE_integer("num_draws", 200, "Independent gradient draws per estimate.")
flags.DEFINE_integer("batch_size", 16, "Test examples in the fixed batch.")
flags.DEFINE_string("output", None, "Markdown table path (default <workdir>/gradient_snr.md).")
flags.mark_flags_as_required(["workdir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    _, dataset, model = load_run(FLAGS.workdir)
    batch = {k: v[: FLAGS.batch_size] for k, v in dataset.test_split().items()}
    lines = ["| K | estimator | encoder SNR | decoder SNR |", "| --- | --- | --- | --- |"]
    for k in map(int, FLAGS.num_samples):
        for estimator in FLAGS.estimators:
            objective = ml_collections.ConfigDict(
                {"name": "iwae", "estimator": estimator, "num_samples": k}
            )
            snr = gradient_snr(
                model,
                batch,
                jax.random.key(k),
                objective_config=objective,
                num_draws=FLAGS.num_draws,
            )
            lines.append(f"| {k} | {estimator} | {snr['encoder']:.3f} | {snr['decoder']:.3f} |")
            print(lines[-1], flush=True)
    with open(FLAGS.output or f"{FLAGS.workdir}/gradient_snr.md", "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    app.run(main)

"""Training: Lightning modules (heatmap, regression, distillation), `train` and `evaluate`.

    from distill.training import train, evaluate
    run_dir = train("synthface/student", ["trainer.max_steps=500"])
    evaluate(run_dir / "best.ckpt", "data/synthface", fmt="synthface", split="test")
"""

from distill.training.evaluate import PREDICTORS, evaluate
from distill.training.run import train

__all__ = ["PREDICTORS", "evaluate", "train"]

"""Training: a recipe in, a run folder with checkpoints out.

    common.py        what every Lightning module shares (optimiser, schedule, metrics, the checkpoint entry)
    heatmap.py       a heatmap model alone (the teacher, or a student from scratch)
    regression.py    a coordinate regressor (ConvDW and friends)
    distillation.py  a heatmap student against a frozen teacher
    alignment.py     the cascade's stage-2 crops, aligned by a trained stage 1
    run.py           `distill train`: recipe -> data -> model -> Lightning fit
    runs.py          run folders, `latest`, the run record
    tracking.py      the loggers (W&B, MLflow, TensorBoard, CSV), what they receive, `distill sync`
    console.py       the banner, the step progress and validation lines

    from distill.training import train
    run_dir = train("synthface/student", ["trainer.max_steps=500"])
"""

from distill.training.run import train

__all__ = ["train"]

"""The record's facts and files into the experiment tracker's active run (MLflow, W&B): ``dispatch`` picks the tools, one module per tool logs."""

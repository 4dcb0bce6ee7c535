"""The comparison harness behind ``ultralytics-biformer compare``, one job per module.

- :mod:`.plan`: the presets, and the frozen :class:`~.plan.Plan` made from checked arguments;
- :mod:`.inputs`: checking and resolving the models, the data and the starting weights;
- :mod:`.resume`: which records and interrupted runs in a run folder belong to a plan;
- :mod:`.runner`: worker processes and the console, and the :class:`~.runner.Outcome` of a run;
- :mod:`.worker`: one training run or benchmark, in its own process;
- :mod:`.metrics`: each task's metrics, and the COCO area buckets;
- :mod:`.stats`: paired differences over seeds, and Holm's correction;
- :mod:`.latency`: CPU latency timing;
- :mod:`.report`: the Markdown table, CSVs and figure.

Only the command line (:mod:`ultralytics_biformer.cli.compare`) and the scripts use it; the plug-in itself does not.
"""

"""The Slurm backend: nodes held through the scheduler, node agents run as job steps.

``hostlist`` expands Slurm's compressed node lists, ``jobinfo`` reads ``scontrol show job``,
``commands`` builds every sbatch/srun/scancel command line, ``steps`` is a Transport that runs commands
on one allocated node as a job step (``srun --overlap``), and ``allocation`` submits, waits for, adopts
and releases the allocation that holds a job's nodes.
"""

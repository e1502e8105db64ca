"""Distillation of the planner into the robot policy: DAgger with (observation, teacher action) shards.

``dexhand distill CONFIG --run-dir RUN`` collects states the student visits (a beta-mixture of the
teacher's and the student's actions), labels every state with the planner's action, refits the
student on everything gathered so far, and writes a normal training checkpoint that ``dexhand eval``,
``dexhand export`` and PPO fine-tuning (``init_from``) read.
"""

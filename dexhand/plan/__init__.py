"""Sampling-based MPC on the simulator: a privileged controller in its own right and the teacher.

``MpcController(env, PlannerConfig())`` plans on the env's own (randomized) MuJoCo model and state
each control step and returns the env's relative action. Methods: predictive sampling, MPPI, CEM.
"""

from dexhand.plan.config import CostConfig, PlannerConfig
from dexhand.plan.controller import MpcController
from dexhand.plan.planner import SamplingPlanner

__all__ = ["CostConfig", "MpcController", "PlannerConfig", "SamplingPlanner"]

"""Scale-out rollouts: CubeReorient envs in Ray actors behind SB3's VecEnv interface.

``dexhand train CONFIG --ray-address ADDR`` (or ``ray_address: local`` in the config) collects
experience from a Ray cluster's CPUs while PPO learns in the driver process. Ray is the optional
``scale`` extra; nothing here imports it until a ``RayVecEnv`` is built.
"""

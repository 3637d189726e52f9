"""NACS (SAE J3400) inlet test plans: ordinary pytest modules run against a rig (real or simulated).

Each test's docstring names what it checks and the profile entries it uses; limits come from the
profile (test_plans/profiles/j3400.toml by default, or --profile), never from the plan.
"""

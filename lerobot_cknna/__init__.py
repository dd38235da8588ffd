from lerobot_cknna.fixes import transformers_fork

# Before any LeRobot module copies the flag (see the module): only in .venv-pi/, where it shows.
if transformers_fork.is_present():
    transformers_fork.apply()

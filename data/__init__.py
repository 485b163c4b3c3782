"Files the project ships: demo triplets, ComFusion scenes, VR questions (read with `importlib.resources`)."

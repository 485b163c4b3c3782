"Reference answer to nbs/25b_latents.ipynb's exercise, and a typical mistake."
import hashlib, json
import numpy as np

def image_key(model_id, image, with_shape=True):
    settings = {"shape": list(image.shape)} if with_shape else {}
    h = hashlib.sha256(json.dumps([model_id, "image", settings], sort_keys=True).encode() + b"\0")
    h.update(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
    return h.hexdigest()

def image_key_wrong(model_id, image):
    "Leaves the shape out of the key."
    return image_key(model_id, image, with_shape=False)

"Reference answer to nbs/23_flow.ipynb's exercise, and a typical mistake."

def euler_step(x_t, v, t, t_next): return x_t + (t_next - t) * v

def euler_step_wrong(x_t, v, t, t_next):
    "Steps along the velocity, towards the noise, instead of against it."
    return x_t + (t - t_next) * v

"Reference answer to nbs/31_priors.ipynb's exercise, and a typical mistake."

def prompt_counts(n, n_prompts): return [n // n_prompts + (j < n % n_prompts) for j in range(n_prompts)]

def prompt_counts_wrong(n, n_prompts):
    "Rounds up for every prompt: as if the last round of prompts were complete."
    return [-(-n // n_prompts)] * n_prompts

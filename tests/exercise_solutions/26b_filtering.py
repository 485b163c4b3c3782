"Reference answer to nbs/26b_filtering.ipynb's exercise, and a typical mistake."
REJECT_ON_YES = {"object_changed": False, "object_in_background": True, "poor_quality": True}

def score(p_yes): return min(1 - p if REJECT_ON_YES[name] else p for name, p in p_yes.items())

def score_wrong(p_yes):
    "Takes the smallest probability of yes, whatever yes means for the check."
    return min(p_yes.values())

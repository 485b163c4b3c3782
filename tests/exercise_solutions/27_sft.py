"Reference answer to nbs/27_sft.ipynb's exercise, and a typical mistake."

def batch_loss(group_means, groups): return sum(len(g) * m for m, g in zip(group_means, groups)) / sum(map(len, groups))

def batch_loss_wrong(group_means, groups):
    "The plain mean of the groups' means: a lone item weighs as much as a group of three."
    return sum(group_means) / len(group_means)

"Reference answer to nbs/32_task.ipynb's exercise, and a typical mistake."
DROPS = {"DreamBooth": ("fusion_instance", "fusion_scene"), "w/o L_F^I, L_F^S": ("fusion_instance", "fusion_scene"),
         "w/o L_F^I": ("fusion_instance",), "w/o L_F^S": ("fusion_scene",)}

def row_loss(terms, row, fusion_weight=.01):
    w = dict(instance=1., prior=1., fusion_instance=fusion_weight, fusion_scene=fusion_weight)
    return sum(v * (0. if k in DROPS.get(row, ()) else w[k]) for k, v in terms.items())

def row_loss_wrong(terms, row):
    "Weights the fusion losses like the composite ones, by 1."
    return row_loss(terms, row, fusion_weight=1.)

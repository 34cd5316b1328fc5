"""CNN trained on permuted labels: the data randomization test of Adebayo et al. (2018).

The training labels are shuffled among the digits once (a fixed permutation; eval labels are
kept), so the model can only memorize. Maps that look the same as those of `configs/cnn.py`
do not depend on what the model learned; compare the two runs with
`python -m trainer.compare_runs --config configs/cnn.py --workdir_a runs/cnn
--workdir_b runs/cnn_random_labels`. `configs/cnn_random_labels.py:tiny` runs in seconds.
"""

from configs import default


def get_config(arg: str | None = None):
    config = default.get_config(arg)
    with config.unlocked():
        config.model = "cnn"
        config.data.random_labels = True
        if arg != "tiny":
            # Memorizing random labels is slow: more epochs, at most 10,000 of the 60,000 digits
            # (the offline sets have 5,000; there the CNN reaches about 90% training accuracy
            # in 30 epochs, eval at chance).
            config.data.max_train_examples = 10_000
            config.num_epochs = 30
            config.sanity.schedule = "epochs:5"
    return config

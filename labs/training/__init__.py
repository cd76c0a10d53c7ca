"""The fine-tuning engine: plain PyTorch + transformers, no Django.

Run it as `python -m labs.training --spec spec.json` (see `__main__`), or
call `labs.training.engine.train(RunSpec(...), on_event=..., should_stop=...)`.
`python -m labs.training --serve-preprocess FOLDER` runs the learner's
`preprocess` on held-out texts for the grader (`serving`);
`python -m labs.training --precheck FOLDER` calls each hook once on a tiny model
and reports what a run would refuse (`precheck`).
`spec`, `data`, `metrics` and `serving` import only the standard library (the
grader and the Django side use them without torch); `engine`, `batching`,
`tiny` and `contract`'s return checks import torch/transformers when used.

The learner contract
====================

The learner's file (`solution.py`) is imported once, as module `solution`.
Everything in it is optional: an empty file trains with the defaults.

HYPERPARAMETERS
---------------
A dict; unknown keys are an error that lists the allowed ones.

=======================  ========  ===============================================
key                      default   allowed
=======================  ========  ===============================================
learning_rate            5e-5      number, 0 < lr <= 1
epochs                   2         integer >= 1; above the lab's cap (default 3)
                                   it is lowered to the cap with a warning
batch_size               32        integer, 1 .. the lab's max (default 128)
max_length               128       integer >= 8 (tokens per text, longer texts
                                   are truncated); above the lab's cap (default
                                   256) it is lowered with a warning
warmup_ratio             0.1       number, 0 <= r < 1 (share of steps warming up)
weight_decay             0.01      number, 0 <= wd <= 1 (not applied to biases
                                   and LayerNorm weights by the default optimiser)
seed                     13        integer, 0 .. 2**32-1
grad_clip                1.0       number > 0 (max gradient norm), or None for
                                   no clipping
label_smoothing          0.0       number, 0 <= s < 1
early_stopping_patience  None      integer >= 1, or None (no early stopping):
                                   stop once the watched dev metric has not
                                   improved for this many epochs in a row
early_stopping_metric    dev_loss  "dev_loss" (lower is better), "dev_accuracy"
                                   or "dev_macro_f1" (higher is better)
=======================  ========  ===============================================

Early stopping
--------------
With `early_stopping_patience` set, the engine evaluates the dev split after
every epoch (as always), remembers the weights of the best epoch by
`early_stopping_metric`, stops when `patience` epochs in a row brought no
improvement, and saves the best epoch's weights, not the last ones. The run
emits an `early_stop` event and the `done` event names `best_epoch`.
`epochs` (capped by the lab) is then the most it may train.

Hooks receive `hp`, a fresh copy of this dict with every key filled in.

Hooks
-----
Define any of these functions; the engine's default is used for the rest.

`preprocess(text: str) -> str`
    Called once per training and dev text, before tokenisation, and again on
    every held-out text at grading, as a serving system would: the grader
    scores the saved model on the held-out texts as `preprocess` returns
    them. Must return a str of at most 10,000 characters (valid Unicode) for
    any input. The held-out texts go through it in a separate sandboxed run
    (`serving`) whose output, prints and files nobody sees, so a failure
    there is reported without any detail. The grader decides from the
    source whether there is a hook to serve: name it in the file (a `def`,
    an assignment or an import), not only in a string built at run time.

`prepare_model(model) -> model`
    Called once with the freshly loaded `BertForSequenceClassification`
    (classifier head newly initialised, on the CPU) before the optimiser is
    built; e.g. freeze layers. Must return the model (changed in place): it
    must still be a Hugging Face `PreTrainedModel` so it can be saved. The
    engine moves it to the device afterwards.

`build_optimizer(model, hp) -> torch.optim.Optimizer`
    Called once after `prepare_model`. Default: AdamW with
    `hp["learning_rate"]`, weight decay `hp["weight_decay"]` on the >= 2-d
    weights and none on biases / LayerNorm weights.

`build_scheduler(optimizer, num_training_steps, hp) -> scheduler`
    Called once with the optimiser. Must return an object with `step()`
    (any `torch.optim.lr_scheduler`); the engine calls `step()` after every
    optimiser step. Default: linear warm-up over `hp["warmup_ratio"]` of the
    steps, then linear decay to zero.

`training_step(model, batch, hp) -> torch.Tensor`
    Called for every batch, in train mode, under bf16 autocast where the
    worker trains in bf16 (a GPU, or a CPU with native bf16 units; the run
    page says which), else in fp32.
    `batch` is a dict of tensors on the model's device: `input_ids` and
    `attention_mask` (batch x longest text in the batch) and `labels`
    (class ids). Must return the scalar loss, with grad; the engine calls
    `backward()`, clips gradients, and steps the optimiser and scheduler.
    Default: cross-entropy on the logits with `hp["label_smoothing"]`.

`after_training(model, dev) -> None`
    Called once, after the last epoch (and after early stopping restored the
    best one), before the model is saved: the place to calibrate on the dev
    split and bake the result into the weights, e.g. add a bias to one
    class's logit in `model.classifier.bias`. `dev.logits` holds the model's
    logits on the dev split (dev texts x classes, float32, CPU), `dev.labels`
    the gold class ids in the same order, `dev.label_names` the labels in
    class-id order. Runs under `torch.no_grad()`; change the model in place
    and return None. The run's reported dev numbers are then the changed
    model's. Default: nothing. (The grader still checks the saved weights
    against the lab's rules.)

Adapters (LoRA and the like)
----------------------------
The grader loads a plain `BertForSequenceClassification` with exactly the
base model's tensors, so adapters that `prepare_model` adds are merged back
before saving. The convention: a module you put into the model that has a
`merge()` method is replaced, when the run ends, by what `merge()` returns —
a plain module carrying the original layer's parameter names, e.g. the
`nn.Linear` the adapter wraps, with the low-rank update `B @ A * scale`
added to its weight. The engine looks for such modules anywhere below the
model (outermost first; it does not look inside a module it merged). After
merging, a tensor the base model does not have (or one it has that is gone,
or of another shape) fails the run with that tensor's name.

Trainable-parameter budget
--------------------------
A lab may cap the share of parameters that stay trainable after
`prepare_model` (e.g. 5% in the parameter-efficient lab). The share is
trainable / all parameters of the model as `prepare_model` returned it
(adapters included); it is reported in the `start` and `done` events
(`trainable_params`, `total_params`, `trainable_share`), and a model over
the cap ends the run as a learner error before training starts. This is an
early warning only: the grader measures the changed parameters again on the
saved weights against the base model, with the lab's rules for which tensors
may change and by what rank, and that measure decides.

What the run reports about its model
------------------------------------
Before the checkpoint is saved, the engine predicts the dev split with the
model it is about to save (after early stopping and `after_training`) and
reports, in a `dev_analysis` event, its costliest dev mistakes (the text,
the true and predicted labels, its confidence; at most 12) and the label
pairs it confuses most (at most 8, each with its costliest example). Only
dev texts appear: the held-out texts never reach the training process.

Any exception raised while importing the file or in a hook ends the run as a
learner error whose traceback shows only lines of `solution.py`.
"""

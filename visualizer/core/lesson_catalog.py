"""The built-in lessons (the Lessons menu), as data: each one is validated when this module loads.

What a lesson may say and how a file is read are in ``lessons.py``; these are the lessons a
lecturer finds in the app, in the menu's order.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from .lessons import SAMPLE, Lesson, Variant
from .recipes import WATCH_LENET5_LEARN


# ==== the built-in lessons ============================================================
def _from_recipe() -> Lesson:
    r = WATCH_LENET5_LEARN
    return Lesson(
        name="watch_lenet5_learn", title=r.title, model=r.arch, options=dict(r.options), dataset=r.dataset,
        train=dict(r.train), front="filters", layer=r.filter_layer, filter_mode="weights and change",
        filter_scale=r.filter_scale, curves=False,
        text=("LeNet-5 starts from random weights on real handwritten digits. On the left the six first-layer "
              "filters, on the right how far each has moved since the start: within a minute or two the noise "
              "turns into stroke and edge detectors, while the loss below falls."),
        formula="w ← w − η · ∂L/∂w   (here AdamW: every weight moves at about the same pace)")


_SIGMOID_PLAIN = {"arch": "plain18", "activation": "sigmoid", "batchnorm": False}

LESSONS: tuple[Lesson, ...] = (
    _from_recipe(),
    Lesson(
        name="convolution_step_by_step", title="Convolution step by step", model=SAMPLE, front="step_by_step",
        layer="C1", train={"epochs": 30},
        text=("One output value of a convolution is the window of the input under the kernel, multiplied cell by "
              "cell and summed, plus the bias. Press Play to slide the window with its stride, or click a position "
              "of a feature map; the sum must equal the value in the real feature map."),
        formula="y[c, i, j] = b[c] + Σₖ Σₘ Σₙ w[c, k, m, n] · x[k, i·s + m − p, j·s + n − p]",
        variants=(Variant("C1: 5×5 on the input", "Six kernels read one 5×5 window of the digit each.",
                          layer="C1"),
                  Variant("C3: across 6 channels", "C3 sums a 5×5 window of each of its six input maps.",
                          layer="C3"),
                  Variant("S2: max pooling", "A pooling window: its largest value wins.", layer="S2"))),
    Lesson(
        name="activation_functions", title="Activation functions", front="activations", layer="C1_act",
        train={"optimizer": "adamw", "lr": 0.003, "batch_size": 32},
        text=("Each activation bends the sum a neuron computes. The view draws the function and its derivative "
              "over the live range of its inputs, with the histogram of the real values: switch the function "
              "below and watch how many inputs land where the slope is flat (saturated) or zero (dead)."),
        formula=("ReLU max(0,x) · Leaky max(0.01x,x) · ELU x or eˣ−1 · σ(x) = 1/(1+e⁻ˣ) · tanh · "
                 "softmax pᵢ = e^zᵢ / Σⱼ e^zⱼ (the output: see Prediction)"),
        variants=tuple(Variant(t, n, options={"activation": a}) for a, t, n in (
            ("relu", "ReLU", "Negative inputs give 0 and no gradient: the spike at 0 is the dead part."),
            ("leaky_relu", "Leaky ReLU", "A small slope below 0 keeps every unit learning."),
            ("elu", "ELU", "Smooth below 0, saturating at −1."),
            ("sigmoid", "Sigmoid", "Squashes into (0, 1); its slope is at most 0.25 and vanishes at both ends."),
            ("tanh", "Tanh", "Squashes into (−1, 1), centred on 0; saturates for large |x|."),
            ("gelu", "GELU", "A smooth ReLU weighted by the Gaussian CDF, used by Transformers.")))),
    Lesson(
        name="vanishing_gradients", title="Vanishing gradients", model="plain18",
        options={"activation": "sigmoid", "batchnorm": False, "width": 0.5}, front="gradients",
        train={"optimizer": "sgd", "lr": 0.05, "max_steps_per_sec": 0.0},
        text=("An 18-layer plain network with sigmoid activations: each layer multiplies the gradient by a "
              "sigmoid slope of at most 0.25, so the first layers' bars sink far below the last ones and they "
              "barely learn. Try the remedies below: ReLU, a residual shortcut, BatchNorm."),
        formula="∂L/∂x₁ = ∂L/∂x_L · Πₗ Wₗ · σ′(zₗ)   with σ′ ≤ 0.25",
        variants=(Variant("Sigmoid, plain", "The problem: gradients shrink layer by layer.", options=_SIGMOID_PLAIN),
                  Variant("ReLU, plain", "ReLU's slope is 1 where it is active: far less shrinking.",
                          options={"arch": "plain18", "activation": "relu", "batchnorm": False}),
                  Variant("Sigmoid, residual", "ResNet's shortcuts add the input back: y = x + F(x) passes the "
                          "gradient straight through.", options={"arch": "resnet18", "activation": "sigmoid",
                                                                  "batchnorm": False}),
                  Variant("ReLU, residual", "Both remedies at once: ResNet-18 as designed, without BatchNorm.",
                          options={"arch": "resnet18", "activation": "relu", "batchnorm": False}),
                  Variant("Sigmoid + BatchNorm", "BatchNorm re-centres every layer's inputs, keeping sigmoid "
                          "out of its flat ends.", options={"arch": "plain18", "activation": "sigmoid",
                                                              "batchnorm": True}))),
    Lesson(
        name="exploding_gradients", title="Exploding gradients",
        options={"activation": "tanh"}, front="gradients", curves=True,
        train={"optimizer": "sgd", "lr": 1.0, "max_steps_per_sec": 20.0},
        text=("A learning rate far too high (1.0): each step overshoots, the weights grow, the gradients with "
              "them, and the loss climbs into the hundreds instead of falling. Clipping the gradient's norm caps "
              "every step; a sane learning rate avoids the problem."),
        formula="g ← g · min(1, c / ‖g‖)   (clip the global norm at c)",
        variants=(Variant("lr 1.0", "Far too high: the loss explodes.", train={"lr": 1.0, "grad_clip": None}),
                  Variant("lr 1.0, clipped at 1", "The same learning rate, each step's norm capped at 1.",
                          train={"lr": 1.0, "grad_clip": 1.0}),
                  Variant("lr 0.01", "A sane learning rate: the loss falls smoothly.",
                          train={"lr": 0.01, "grad_clip": None}))),
    Lesson(
        name="max_vs_average_pooling", title="Max vs average pooling", front="pooling", layer="S2",
        train={"optimizer": "adamw", "lr": 0.003, "batch_size": 32, "max_steps_per_sec": 20.0},
        text=("Pooling shrinks each map by summarising every 2×2 window. Max pooling keeps the strongest response "
              "(the circled winners) and passes the gradient only to it; average pooling keeps the mean and "
              "blurs. Switch below and compare the outputs."),
        formula="max: y = maxₘₙ x[2i+m, 2j+n]     average: y = ¼ Σₘₙ x[2i+m, 2j+n]",
        variants=(Variant("Max pooling", options={"pooling": "max"}),
                  Variant("Average pooling", options={"pooling": "avg"}))),
    Lesson(
        name="fully_connected_softmax", title="Fully connected layer and softmax", model=SAMPLE,
        front="step_by_step", layer="output",
        text=("The last layer is fully connected: each class score is a weighted sum of all 84 values of F6, plus "
              "a bias. The bars show the largest contributions w·x to the chosen class; softmax then turns the ten "
              "scores into probabilities (the Prediction view). Draw a digit and watch both change."),
        formula="zⱼ = bⱼ + Σᵢ wⱼᵢ xᵢ      pⱼ = e^zⱼ / Σₖ e^zₖ"),
    Lesson(
        name="minibatch_sgd", title="Minibatch SGD", front="gradients", curves=True,
        train={"optimizer": "sgd", "lr": 0.05, "momentum": 0.0, "batch_size": 32, "epochs": 20,
               "max_steps_per_sec": 50.0},
        text=("Each step estimates the gradient from a small batch, so the loss curve is noisy: the smaller the "
              "batch, the noisier and the more steps per epoch. A learning-rate schedule shrinks the steps as "
              "training goes on, and the curve settles."),
        formula="w ← w − η · (1/B) Σ_{b∈batch} ∇ℓ(x_b, y_b; w)",
        variants=(Variant("Batch 32", train={"batch_size": 32, "schedule": "none"}),
                  Variant("Batch 64", train={"batch_size": 64, "schedule": "none"}),
                  Variant("Batch 8", "Four times the steps per epoch, each one noisier.",
                          train={"batch_size": 8, "schedule": "none"}),
                  Variant("Step schedule", "η × 0.3 after every epoch.",
                          train={"schedule": "step", "step_size": 1, "gamma": 0.3}),
                  Variant("Cosine schedule", "η falls smoothly to 0 over the run.", train={"schedule": "cosine"}))),
    Lesson(
        name="overfitting", title="Overfitting and its cures", front="prediction", curves=True, limit=600,
        train={"optimizer": "adamw", "lr": 0.003, "batch_size": 32, "epochs": 200, "max_steps_per_sec": 0.0},
        text=("Trained on only 540 digits, LeNet-5 learns them by heart: training accuracy reaches 100% while the "
              "validation curve stalls and its loss climbs again. Augmentation, dropout and BatchNorm bring the "
              "two curves back together; more data does best."),
        formula="generalisation gap = validation loss − training loss",
        variants=(Variant("Small subset", "600 samples: watch the curves come apart.", limit=600,
                          options={"dropout": 0.0, "batchnorm": False},
                          augment={"rotation": 0.0, "translation": 0.0, "scale": 0.0}),
                  Variant("+ augmentation", "Every epoch sees the digits shifted, rotated and scaled a little.",
                          augment={"rotation": 15.0, "translation": 0.1, "scale": 0.1}),
                  Variant("+ dropout", "Half of F6's units are dropped at random each step.",
                          options={"dropout": 0.5}),
                  Variant("+ BatchNorm", options={"batchnorm": True}),
                  Variant("All the data", "9,000 training digits: the gap closes.", limit=0,
                          options={"dropout": 0.0, "batchnorm": False},
                          augment={"rotation": 0.0, "translation": 0.0, "scale": 0.0}))),
    Lesson(
        name="lenet5", title="LeNet-5 (1998)", group="Classic architectures", model=SAMPLE, layer="C1",
        highlight=("C1", "S2", "C3", "S4"),
        text=("LeCun's network that read cheques: two pairs of a 5×5 convolution and a 2×2 subsampling (highlighted), "
              "then three fully connected layers. 61,706 parameters; every later CNN keeps this pattern of "
              "convolution, nonlinearity and pooling.")),
    Lesson(
        name="alexnet", title="AlexNet (2012)", group="Classic architectures", model="alexnet", layer="features.conv1",
        highlight=("features.conv1", "features.pool*", "classifier.dropout*"), train={"max_steps_per_sec": 0.0},
        text=("Five convolutions with ReLU, overlapping 3×3 max pools and two huge fully connected layers kept in "
              "check by dropout (highlighted). Trained on two GPUs, it won ImageNet 2012 by a wide margin and "
              "started the deep-learning boom.")),
    Lesson(
        name="vgg", title="VGG (2014)", group="Classic architectures", model="vgg11", layer="features.conv3_1",
        highlight=("features.conv3_*", "features.bn3_*", "features.act3_*", "features.pool3"),
        train={"max_steps_per_sec": 0.0},
        text=("Depth from one simple block: stacks of 3×3 convolutions, each stage ending in a 2×2 max pool that "
              "halves the size while the channels double. Two 3×3 convolutions see as far as one 5×5 with fewer "
              "weights. Highlighted: stage 3.")),
    Lesson(
        name="googlenet", title="GoogLeNet (2014)", group="Classic architectures", model="googlenet",
        layer="inception3a", highlight=("inception3a", "inception3a.*"), train={"max_steps_per_sec": 0.0},
        text=("The Inception module (highlighted) runs a 1×1, a 3×3 and a 5×5 convolution and a pool side by side "
              "and concatenates their maps, so the next layer picks the scale it needs; 1×1 convolutions shrink "
              "the channels first to keep it cheap.")),
    Lesson(
        name="resnet", title="ResNet (2015)", group="Classic architectures", model="resnet18",
        layer="layer2.0.downsample.0", highlight=("layer2.0", "layer2.0.*"), train={"max_steps_per_sec": 0.0},
        text=("Each residual block (highlighted) computes F(x) and adds its input back: y = x + F(x). The shortcut "
              "(here a strided 1×1 'downsample' convolution where the shape changes) lets the gradient flow "
              "straight through, so very deep networks still train."),
        formula="y = ReLU(x + BN(W₂ · ReLU(BN(W₁ · x))))"),
    Lesson(
        name="mobilenet", title="MobileNet (2018)", group="Classic architectures", model="mobilenetv2",
        layer="features.block2.depthwise.conv",
        highlight=("kind:depthwise_conv", "features.block2", "features.block2.*"), train={"max_steps_per_sec": 0.0},
        text=("Built for phones: a depthwise-separable convolution (highlighted) filters each channel on its own "
              "with a 3×3 kernel, then mixes channels with a 1×1 convolution: about a ninth of the work of a full "
              "3×3 convolution. Blocks expand, filter depthwise and project back (inverted residuals).")),
    Lesson(
        name="class_activation_maps", title="Where the network looks (class activation maps)", model=SAMPLE,
        front="cam",
        text=("Grad-CAM weights each map of the last convolution by how much it raises the chosen class's score and "
              "adds them up: bright regions are where the evidence for that class lies. Draw a digit on the pad, "
              "or pick another class, and the heat map follows."),
        formula="αₖ = mean_ij ∂y_c/∂Aᵏ_ij      map = ReLU(Σₖ αₖ Aᵏ)"),
)

LESSONS_BY_NAME: Mapping[str, Lesson] = MappingProxyType({lesson.name: lesson for lesson in LESSONS})
WATCH_IT_LEARN = LESSONS[0]

import numpy as np
import pytest

import keras_tinybert as kt
from keras_tinybert import testing


@pytest.fixture(scope="module")
def teacher():
    return testing.tiny_classifier(num_layers=4, hidden_dim=48, num_heads=4, num_classes=3)


def test_student_like_keeps_family_vocabulary_and_head(teacher):
    student = kt.models.student_like(teacher, num_layers=2, hidden_dim=24, intermediate_dim=40)
    assert type(student) is type(teacher)
    assert type(student.backbone) is type(teacher.backbone)
    assert student.preprocessor is teacher.preprocessor
    assert student.num_classes == 3
    b = student.backbone
    assert (b.num_layers, b.hidden_dim, b.intermediate_dim, b.num_heads) == (2, 24, 40, 4)
    assert b.vocabulary_size == teacher.backbone.vocabulary_size
    assert student(teacher.preprocessor(["a good film"])).shape == (1, 3)


def test_student_of_a_backbone_is_a_backbone(teacher):
    student = kt.models.student_like(teacher.backbone, 2, 24, 40)
    assert type(student) is type(teacher.backbone)


def test_paper_shapes(teacher):
    s4 = kt.models.tinybert4_like(teacher)
    assert (s4.backbone.num_layers, s4.backbone.hidden_dim,
            s4.backbone.intermediate_dim, s4.backbone.num_heads) == (4, 312, 1200, 12)
    # 4 blocks x (4·312² + 2·312·1200 + biases and norms): the paper's 4.7M "non-
    # embedding" parameters include the pooler; the blocks alone are 4.57M.
    per_block = 4 * (312 * 312 + 312) + 312 * 1200 + 1200 + 1200 * 312 + 312 + 4 * 312
    assert kt.models.encoder_parameters(s4) == 4 * per_block == 4_568_736
    assert kt.models.TINYBERT6 == {"num_layers": 6, "hidden_dim": 768,
                                   "intermediate_dim": 3072, "num_heads": 12}


def test_init_from_teacher_copies_mapped_blocks(teacher):
    student = kt.models.student_like(teacher, 2, 48, 64, init_from_teacher=True)
    for m, n in [(1, 2), (2, 4)]:
        for ws, wt in zip(student.backbone.transformer_layers[m - 1].weights,
                          teacher.backbone.transformer_layers[n - 1].weights):
            np.testing.assert_array_equal(ws.numpy(), wt.numpy())
    x = teacher.preprocessor(["the best film ever"])
    emb = kt.Taps(student)(x)["embedding"]
    np.testing.assert_allclose(emb, kt.Taps(teacher)(x)["embedding"], atol=1e-6)


def test_init_from_teacher_with_top_map(teacher):
    student = kt.models.student_like(teacher, 2, 48, 64, init_from_teacher=True,
                                     layer_map="top")
    np.testing.assert_array_equal(
        student.backbone.transformer_layers[0].weights[0].numpy(),
        teacher.backbone.transformer_layers[2].weights[0].numpy(),
    )


def test_init_from_teacher_needs_the_teachers_width(teacher):
    with pytest.raises(ValueError, match="needs the teacher's width"):
        kt.models.student_like(teacher, 2, 24, 64, init_from_teacher=True)


def test_heads_must_divide_width(teacher):
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        kt.models.student_like(teacher, 2, 30, 64)


def test_task_like_puts_the_teachers_head_on_a_backbone_student(teacher):
    general = kt.models.student_like(teacher.backbone, 2, 24, 40)
    task = kt.models.task_like(general, teacher)
    assert type(task) is type(teacher) and task.backbone is general
    assert task.num_classes == 3 and task.preprocessor is teacher.preprocessor
    assert kt.models.task_like(task, teacher) is task

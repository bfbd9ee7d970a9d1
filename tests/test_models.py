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


# ------------------------------------------------------------ every family --
@pytest.fixture(scope="module", params=sorted(testing.FAMILIES))
def family_teacher(request):
    return request.param, testing.tiny_family_model(
        request.param, num_layers=4, hidden_dim=32, num_heads=4, num_classes=3, seed=1)


def test_student_like_every_family(family_teacher):
    name, teacher = family_teacher
    heads = None if name == "f_net" else 4
    student = kt.models.student_like(teacher, num_layers=2, hidden_dim=24,
                                     intermediate_dim=40)
    assert type(student) is type(teacher)
    taps = kt.Taps(student)
    assert (taps.num_layers, taps.hidden_dim, taps.num_heads) == (2, 24, heads)
    assert kt.taps.vocabulary_size(student) == kt.taps.vocabulary_size(teacher)
    x = testing.family_inputs(teacher, ["a good film", "the worst plot"])
    if testing.FAMILIES[name].classifier is None:  # a backbone (ELECTRA)
        assert not taps.has_logits
        return
    assert student.preprocessor is teacher.preprocessor
    assert student(x).shape == (2, 3)


def test_family_rules():
    """ALBERT groups and factorised embeddings, ELECTRA's vocab_size and
    embedding size, RoFormerV2's head size."""
    albert = testing.tiny_family_model("albert", num_layers=4, hidden_dim=32)
    s = kt.models.student_like(albert, 3, 64, 80).backbone
    assert (s.num_groups, s.num_inner_repetitions, s.embedding_dim) == (1, 1, 16)
    assert kt.models.student_like(albert, 2, 8, 16).backbone.embedding_dim == 8
    electra = testing.tiny_family_model("electra", hidden_dim=32)
    s = kt.models.student_like(electra, 1, 24, 48)
    assert (s.vocab_size, s.embedding_dim) == (electra.vocab_size, 16)
    roformer = testing.tiny_family_model("roformer_v2", hidden_dim=32, num_heads=4)
    assert kt.models.student_like(roformer, 1, 48, 64).backbone.head_size == 12
    bert = testing.tiny_family_model("bert", hidden_dim=32)  # E = d: follows d
    assert kt.models.student_like(bert, 1, 24, 48).backbone.hidden_dim == 24


def test_albert_groups_divide_the_depth():
    tokenizer = testing.FAMILIES["albert"].tokenizer()
    import keras_hub

    teacher = keras_hub.models.AlbertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=6, num_heads=2,
        embedding_dim=8, hidden_dim=16, intermediate_dim=32, num_groups=3,
        num_inner_repetitions=2, max_sequence_length=32)
    student = kt.models.student_like(teacher, 3, 16, 32)
    assert (student.num_groups, kt.Taps(student).num_layers) == (3, 3)
    assert kt.models.student_like(teacher, 4, 16, 32).num_groups == 1


def test_a_family_without_heads_refuses_num_heads():
    fnet = testing.tiny_family_model("f_net")
    with pytest.raises(ValueError, match="no attention heads"):
        kt.models.student_like(fnet, 1, 16, 32, num_heads=2)
    assert kt.Taps(kt.models.tinybert4_like(fnet)).num_heads is None


def test_init_from_teacher_every_family(family_teacher):
    """Mapped block calls take the teacher's blocks g(m); the embedding layers
    are copied, so the embedding outputs agree."""
    name, teacher = family_teacher
    student = kt.models.student_like(teacher, 2, 32, 64, init_from_teacher=True)
    t_blocks, s_blocks = kt.Taps(teacher).blocks, kt.Taps(student).blocks
    for m, n in [(1, 2), (2, 4)]:
        if name == "albert" and m == 2:
            continue  # ALBERT's one shared block takes its first call's g(1)
        for ws, wt in zip(s_blocks[m - 1].weights, t_blocks[n - 1].weights):
            np.testing.assert_array_equal(ws.numpy(), wt.numpy())
    x = testing.family_inputs(teacher, ["the best film ever"])
    np.testing.assert_allclose(kt.Taps(student)(x)["embedding"],
                               kt.Taps(teacher)(x)["embedding"], atol=1e-6)


def test_task_like_follows_the_students_width():
    """DeBERTaV3's task layer (`hidden_dim` in its config) is as wide as the
    student when the teacher's is as wide as the teacher."""
    teacher = testing.tiny_family_model("deberta_v3", hidden_dim=32)
    general = kt.models.student_like(teacher.backbone, 1, 16, 32)
    task = kt.models.task_like(general, teacher)
    assert task.pooled_dense.kernel.shape == (16, 16)

from models.document import Document
from workflows.demo_documents import seed_demo_documents


def test_demo_documents_cover_the_states_and_are_idempotent(users):
    seed_demo_documents()
    states = {(d.direction, d.state) for d in Document.objects}
    assert {
        ("incoming", s) for s in ("registered", "presented", "processing", "completed")
    } <= states
    assert {("outgoing", s) for s in ("draft", "review", "signing")} <= states
    assert Document.objects.overdue().count() >= 2
    count = Document.objects.count()
    seed_demo_documents()
    assert Document.objects.count() == count

"""Business memory: facts, entities and relationships with confidence and time validity.

Entry points for other apps (no LLM here; the agents app extracts candidate facts and hands them over):

* write: ``memory.services.facts.fact_remember`` / ``facts_remember_many`` (privacy filter, deduplication,
  conflicts, supersession), ``memory.services.messages.messages_record`` (index the messages facts came from),
  ``memory.services.entities.entity_upsert`` / ``relationship_create``;
* read: ``memory.retrieval.search`` (hybrid, per organization, category and point in time),
  ``memory.context.build_context`` (fits a token budget), ``memory.references.resolve_reference``;
* commands: ``memory.services.commands`` (remember, forget, about, show and clear my data);
* ``memory.privacy.scan`` to check any text for secrets; ``memory.repeated_work.suggest_workflows``.
"""

package org.coachsync

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Bad input is refused with `CoachsyncException.InvalidInput`, and changes nothing. */
class InvalidInputTest : DeviceTestBase() {
    @Test
    fun `JSON that does not parse is InvalidInput`() {
        val server = startServer()
        val device = openDevice("phone", server.syncUrl)
        val created = assertThrows<CoachsyncException.InvalidInput> { device.create(null, "{\"title\": ") }
        assertTrue(created.message.orEmpty().contains("invalid JSON"), created.message)

        val doc = device.create(null, """{"title": "Lunchroom walkthrough", "notes": []}""")
        val pushed = assertThrows<CoachsyncException.InvalidInput> { device.push(doc, "notes", "not json") }
        assertTrue(pushed.message.orEmpty().contains("invalid JSON"), pushed.message)
        val set = assertThrows<CoachsyncException.InvalidInput> { device.set(doc, "title", "'single quotes'") }
        assertTrue(set.message.orEmpty().contains("invalid JSON"), set.message)

        // A JSON value that is not an object is no document.
        assertThrows<CoachsyncException.InvalidInput> { device.create(null, "[1, 2]") }
        // Nor is a malformed URL a document's.
        assertThrows<CoachsyncException.InvalidInput> { device.get("automerge:not-a-document") }

        assertEquals("""{"notes":[],"title":"Lunchroom walkthrough"}""", device.get(doc))
        assertEquals(listOf(doc), device.list(null).map { it.url })
    }

    @Test
    fun `an invalid coaching document is InvalidInput naming the field`() {
        val server = startServer()
        val device = openDevice("phone", server.syncUrl)
        // No `setting`: required for an observation.
        val missing = """{"title": "Room 12", "observedAt": 1773162300000, "script": [], "status": "draft"}"""
        val created = assertThrows<CoachsyncException.InvalidInput> { device.create("observation", missing) }
        assertTrue(created.message.orEmpty().contains("setting: is required"), created.message)
        assertEquals(emptyList<DocSummary>(), device.list(null))

        val doc = device.create("observation", MINIMAL_OBSERVATION)
        val before = device.get(doc)
        val set = assertThrows<CoachsyncException.InvalidInput> { device.set(doc, "setting", "\"gym\"") }
        assertTrue(set.message.orEmpty().contains("setting: must be one of"), set.message)
        val pushed = assertThrows<CoachsyncException.InvalidInput> {
            device.push(doc, "script", """{"id": "s1", "text": "no time given"}""")
        }
        assertTrue(pushed.message.orEmpty().contains("script.0.at: is required"), pushed.message)
        assertEquals(before, device.get(doc))
    }
}

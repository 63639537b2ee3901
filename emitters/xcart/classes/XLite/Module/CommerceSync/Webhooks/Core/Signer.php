<?php
// vim: set ts=4 sw=4 sts=4 et:

/**
 * commerce-sync store events for X-Cart 5: the envelope and its Standard Webhooks signature.
 *
 * Free of X-Cart on purpose: the repository's tests include this file with the plain php
 * CLI and check what it produces with the receiver's own verifier.
 *
 * What the receiver takes (docs/project-contracts.md §1.2, the repository's
 * commerce_sync/intake/bodies.py and proofs.py; the same as sandboxes/xcart/sandbox.py
 * sends):
 * - body `{"type": ..., "timestamp": "YYYY-MM-DDTHH:MM:SSZ", "data": {"id": "<id>", "store": "xcart"}}`,
 *   a thin event that names the record (the sync reads it back through the REST API);
 * - headers `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
 *   `v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">`, the key being the base64
 *   part of the `whsec_...` secret (https://www.standardwebhooks.com/, spec
 *   "Signature scheme"; the Python `standardwebhooks` library the receiver uses
 *   strips `whsec_` and base64-decodes the rest the same way).
 *
 * PHP 5.4 syntax, as X-Cart 5.3 runs on PHP 5.4 to 7.x.
 */

namespace XLite\Module\CommerceSync\Webhooks\Core;

class Signer
{
    const SECRET_PREFIX = 'whsec_';
    const STORE = 'xcart';

    /**
     * The event types the receiver accepts from a store (commerce_sync/intake/bodies.py).
     *
     * @var string[]
     */
    protected static $types = array(
        'order.created',
        'order.updated',
        'order.cancelled',
        'return.requested',
        'customer.created',
        'customer.updated',
    );

    /**
     * A new event id: `evt_` and 32 hex digits, as the sandbox names its events. It is the
     * `webhook-id`, kept with the event so every retry repeats it (the receiver dedupes by it).
     *
     * @return string
     */
    public static function newEventId()
    {
        if (function_exists('random_bytes')) {
            $bytes = random_bytes(16);
        } else {
            $bytes = openssl_random_pseudo_bytes(16);
        }

        return 'evt_' . bin2hex($bytes);
    }

    /**
     * The JSON body of one event.
     *
     * @param string  $type       One of the accepted types
     * @param mixed   $recordId   The store's own id (order_id, profile_id, the return's id)
     * @param integer $occurredAt Unix seconds
     *
     * @return string
     */
    public static function envelope($type, $recordId, $occurredAt)
    {
        if (!in_array($type, static::$types, true)) {
            throw new \InvalidArgumentException('unknown event type ' . $type);
        }
        $recordId = (string) $recordId;
        if ('' === $recordId || 200 < strlen($recordId)) {
            throw new \InvalidArgumentException('the record id must be 1 to 200 characters');
        }

        return json_encode(
            array(
                'type'      => $type,
                'timestamp' => gmdate('Y-m-d\TH:i:s\Z', (int) $occurredAt),
                'data'      => array('id' => $recordId, 'store' => static::STORE),
            ),
            JSON_UNESCAPED_SLASHES
        );
    }

    /**
     * `v1,` and the base64 HMAC-SHA256 of "{id}.{timestamp}.{body}".
     *
     * @param string  $secret    The `whsec_...` secret
     * @param string  $eventId   The webhook-id
     * @param integer $timestamp Unix seconds of this attempt
     * @param string  $body      The raw body, byte for byte as sent
     *
     * @return string
     */
    public static function sign($secret, $eventId, $timestamp, $body)
    {
        $content = $eventId . '.' . (int) $timestamp . '.' . $body;

        return 'v1,' . base64_encode(hash_hmac('sha256', $content, static::key($secret), true));
    }

    /**
     * The headers of one delivery attempt (the timestamp is the attempt's: the receiver
     * refuses one more than five minutes from its clock, so a retry is signed afresh).
     *
     * @param string  $secret    The `whsec_...` secret
     * @param string  $eventId   The webhook-id
     * @param integer $timestamp Unix seconds of this attempt
     * @param string  $body      The raw body
     *
     * @return array
     */
    public static function headers($secret, $eventId, $timestamp, $body)
    {
        return array(
            'Content-Type'      => 'application/json',
            'webhook-id'        => $eventId,
            'webhook-timestamp' => (string) (int) $timestamp,
            'webhook-signature' => static::sign($secret, $eventId, $timestamp, $body),
        );
    }

    /**
     * The HMAC key: the base64 part of a `whsec_...` secret.
     *
     * @param string $secret The secret
     *
     * @return string
     */
    protected static function key($secret)
    {
        $secret = trim((string) $secret);
        if (0 === strpos($secret, static::SECRET_PREFIX)) {
            $secret = substr($secret, strlen(static::SECRET_PREFIX));
        }
        $key = base64_decode($secret, true);
        if (false === $key || '' === $key) {
            throw new \InvalidArgumentException('the webhook secret is not a whsec_ base64 key');
        }

        return $key;
    }
}

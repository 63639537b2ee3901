<?php
// vim: set ts=4 sw=4 sts=4 et:

/**
 * Prints one signed store event, made by the module's own Signer, as JSON:
 * {"headers": {...}, "body": "..."}. No X-Cart needed.
 *
 *   php sample-event.php <whsec_secret> <type> <record id> [<unix time>]
 *
 * The repository's tests run it and check the result with the receiver's verifier; a
 * merchant can use it to check the receiver URL and secret before installing (README.md).
 */

require __DIR__ . '/../classes/XLite/Module/CommerceSync/Webhooks/Core/Signer.php';

use XLite\Module\CommerceSync\Webhooks\Core\Signer;

if ($argc < 4) {
    fwrite(STDERR, "usage: php sample-event.php <whsec_secret> <type> <record id> [<unix time>]\n");
    exit(2);
}

$secret = $argv[1];
$now = isset($argv[4]) ? (int) $argv[4] : time();

try {
    $eventId = Signer::newEventId();
    $body = Signer::envelope($argv[2], $argv[3], $now);
    $headers = Signer::headers($secret, $eventId, $now, $body);
} catch (\InvalidArgumentException $e) {
    fwrite(STDERR, $e->getMessage() . "\n");
    exit(1);
}

echo json_encode(array('headers' => $headers, 'body' => $body), JSON_UNESCAPED_SLASHES), "\n";

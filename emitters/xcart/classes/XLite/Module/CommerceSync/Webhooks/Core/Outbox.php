<?php
// vim: set ts=4 sw=4 sts=4 et:

/**
 * commerce-sync store events for X-Cart 5: writes an event to the outbox.
 */

namespace XLite\Module\CommerceSync\Webhooks\Core;

use XLite\Module\CommerceSync\Webhooks\Model\Event;

class Outbox
{
    const ENTITY = 'XLite\Module\CommerceSync\Webhooks\Model\Event';

    /**
     * Records reported as created in this PHP process ("order:12" => true): one request
     * that creates a record and then updates it (checkout sets the new order's statuses,
     * registration saves the profile again) reports the creation alone.
     *
     * @var array
     */
    protected static $created = array();

    /**
     * Write one event. A plain SQL insert on Doctrine's connection, not a persisted
     * entity: most hooks run inside Doctrine's flush (@PostPersist / @PostUpdate
     * callbacks, where new entities are not flushed), and there the insert joins the
     * flush's transaction, so the event is stored exactly when the change it reports is;
     * elsewhere (processSucceed, the address book) it is written at once. A failure is logged
     * and swallowed: the store's own work must not fail for the sync's sake, and the
     * sync's change feed still finds the change.
     *
     * @param string $type     One of Signer's types
     * @param mixed  $recordId The store's id of the record
     *
     * @return void
     */
    public static function record($type, $recordId)
    {
        $recordId = (string) $recordId;
        list($family, $action) = explode('.', $type, 2);
        $key = $family . ':' . $recordId;
        if ('' === $recordId || '0' === $recordId) {
            return;
        }
        if ('updated' === $action && isset(static::$created[$key])) {
            return;
        }
        if (static::isRestApiRequest()) {
            return;
        }

        try {
            $em = \XLite\Core\Database::getEM();
            $table = $em->getClassMetadata(static::ENTITY)->getTableName();
            $em->getConnection()->insert(
                $table,
                Event::newRow($type, $recordId, \XLite\Core\Converter::time())
            );
            if ('created' === $action) {
                static::$created[$key] = true;
            }
        } catch (\Exception $e) {
            \XLite\Logger::getInstance()->log(
                'commerce-sync: could not record ' . $type . ' ' . $recordId . ': ' . $e->getMessage(),
                LOG_ERR
            );
        }
    }

    /**
     * Whether this is a call of X-Cart's REST API (`admin.php?target=RESTAPI`,
     * docs/systems/xcart.md §1): those are the sync's own writes (order statuses,
     * tracking, stock), which report nothing, as in the sandbox (docs/systems/xcart.md
     * §7). Other REST clients' changes are then unreported too; the change feed finds
     * them. The target as X-Cart keeps it, \XLite\Core\Request::$target, compared
     * without case [INFERRED: whether X-Cart normalizes its case was not checked].
     *
     * @return boolean
     */
    protected static function isRestApiRequest()
    {
        return 'restapi' === strtolower((string) \XLite\Core\Request::getInstance()->target);
    }
}
